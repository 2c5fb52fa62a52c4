"""RabbitMQ management-API adapter: the only package that speaks HTTP to the broker."""
