"""Create (idempotently) the broker side of an agent: vhost, users, permissions, queues."""

from collections.abc import Sequence

from rmq.client import ManagementClient
from rmq.limits import VhostLimits, set_vhost_limits
from rmq.naming import (
    NOTHING_PATTERN,
    SERVICE_VHOST_METADATA,
    build_consumer_queue_pattern,
    build_queues_read_pattern,
    format_consumer_queue_name,
)

# Upstream Waldur's arguments for a consumer queue: messages live an hour, at most 10,000
# wait, and overflow or expiry dead-letters them to waldur.dlq.messages.
CONSUMER_QUEUE_ARGUMENTS = {
    "x-message-ttl": 3_600_000,
    "x-max-length": 10_000,
    "x-overflow": "reject-publish-dlx",
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": "waldur.dlq.messages",
}


def provision_vhost(client: ManagementClient, *, vhost: str) -> None:
    """Ensure an owner's vhost exists, tagged as the service's, and the service may declare
    queues in it (a PUT without the tag would clear it)."""
    client.put(["vhosts", vhost], body=SERVICE_VHOST_METADATA)
    client.put(
        ["permissions", vhost, client.user],
        body={"configure": ".*", "write": ".*", "read": ".*"},
    )


def provision_subscription_access(
    client: ManagementClient,
    *,
    vhost: str,
    username: str,
    password: str,
    queue_names: Sequence[str],
    limits: VhostLimits,
) -> None:
    """Ensure the vhost with its limits, the subscription's user and its permission exist.

    The user may configure and write nothing and read exactly `queue_names` (the queues the
    service declares for it): it cannot declare, bind or publish.
    """
    provision_vhost(client, vhost=vhost)
    set_vhost_limits(client, vhost=vhost, limits=limits)
    client.put(["users", username], body={"password": password, "tags": ""})
    client.put(
        ["permissions", vhost, username],
        body={
            "configure": NOTHING_PATTERN,
            "write": NOTHING_PATTERN,
            "read": build_queues_read_pattern(queue_names),
        },
    )


def declare_subscription_queue(client: ManagementClient, *, vhost: str, name: str) -> None:
    """Declare a durable, non-auto-delete classic queue (a no-op when it exists)."""
    client.put(
        ["queues", vhost, name], body={"durable": True, "auto_delete": False, "arguments": {}}
    )


def delete_subscription_user(client: ManagementClient, *, username: str) -> None:
    """Remove a subscription's broker user (its connections are closed by the broker)."""
    client.delete(["users", username])


def provision_consumer(
    client: ManagementClient,
    *,
    vhost: str,
    username: str,
    password: str,
    consumer_hex: str,
    limits: VhostLimits,
) -> None:
    """Ensure an event consumer's vhost, queue, user and read-only permission exist.

    The queue is declared before the user may read it: the agent subscribes to
    `/amq/queue/<queue>`, which declares nothing. The user may configure and write
    nothing, and read only its own queue; the password is set again on every call.
    """
    queue = format_consumer_queue_name(consumer_hex)
    provision_vhost(client, vhost=vhost)
    set_vhost_limits(client, vhost=vhost, limits=limits)
    client.put(
        ["queues", vhost, queue],
        body={"durable": True, "auto_delete": False, "arguments": CONSUMER_QUEUE_ARGUMENTS},
    )
    client.put(["users", username], body={"password": password, "tags": ""})
    client.put(
        ["permissions", vhost, username],
        body={"configure": "^$", "write": "^$", "read": build_consumer_queue_pattern(consumer_hex)},
    )


def delete_broker_user(client: ManagementClient, *, username: str) -> None:
    """Remove a broker user (the broker closes its connections)."""
    client.delete(["users", username])


def deprovision_consumer(
    client: ManagementClient, *, vhost: str, username: str, consumer_hex: str
) -> None:
    """Remove an event consumer's broker user, then its queue (missing ones count as gone).

    The user goes first: the broker closes its connections, so nothing consumes from the
    queue while it is deleted.
    """
    delete_broker_user(client, username=username)
    client.delete(["queues", vhost, format_consumer_queue_name(consumer_hex)])
