"""Benchmarks of agentstats against the real PostgreSQL and RabbitMQ (see docs/benchmarks.md)."""
