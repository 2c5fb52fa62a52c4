"""Create (idempotently) the broker side of an event subscription: vhost, user, queues."""

from rmq.client import ManagementClient
from rmq.naming import build_subscription_queue_pattern


def provision_subscription_access(
    client: ManagementClient, *, vhost: str, username: str, password: str
) -> None:
    """Ensure the vhost, the subscription's user and its queue-only permissions exist."""
    client.put(["vhosts", vhost], body={})
    # The service itself declares queues in the vhost through the management API.
    client.put(
        ["permissions", vhost, client.user],
        body={"configure": ".*", "write": ".*", "read": ".*"},
    )
    client.put(["users", username], body={"password": password, "tags": ""})
    pattern = build_subscription_queue_pattern(username)
    client.put(
        ["permissions", vhost, username],
        body={"configure": pattern, "write": pattern, "read": pattern},
    )


def declare_subscription_queue(client: ManagementClient, *, vhost: str, name: str) -> None:
    """Declare a durable, non-auto-delete classic queue (a no-op when it exists)."""
    client.put(
        ["queues", vhost, name], body={"durable": True, "auto_delete": False, "arguments": {}}
    )


def delete_subscription_user(client: ManagementClient, *, username: str) -> None:
    """Remove a subscription's broker user (its connections are closed by the broker)."""
    client.delete(["users", username])
