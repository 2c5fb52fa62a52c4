"""Per-vhost limits: how many queues and connections an owner's vhost may hold.

RabbitMQ applies them to every user of the vhost, the service's management user too: a
queue the service declares must fit, so callers set the limits before declaring.
"""

from dataclasses import dataclass

from rmq.client import ManagementClient

# RabbitMQ 3.10 answers a vhost-limits PUT that accepts only JSON with 406 (it sends no
# body back): the request also accepts anything else.
_ACCEPT_ANY = {"Accept": "application/json, */*;q=0.1"}


@dataclass(frozen=True, slots=True)
class VhostLimits:
    """The `max-queues` and `max-connections` of one vhost."""

    max_queues: int
    max_connections: int


def compute_vhost_limits(
    *, queues: int, broker_users: int, connections_per_user: int, headroom: int
) -> VhostLimits:
    """Size a vhost's limits to the queues and broker users it needs, plus the headroom."""
    return VhostLimits(
        max_queues=queues + headroom,
        max_connections=broker_users * connections_per_user + headroom,
    )


def set_vhost_limits(client: ManagementClient, *, vhost: str, limits: VhostLimits) -> None:
    """Set (replace) both limits of an existing vhost."""
    for name, value in (
        ("max-queues", limits.max_queues),
        ("max-connections", limits.max_connections),
    ):
        client.put(["vhost-limits", vhost, name], body={"value": value}, headers=_ACCEPT_ANY)
