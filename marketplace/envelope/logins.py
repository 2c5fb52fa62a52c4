"""Which agent a broker connection belongs to, from the user it logged in as and its vhost.

A legacy subscription logs in as its uuid hex, a unified event consumer as its random
`rmq_username`; both in their owner's vhost (the owner's uuid hex).
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from marketplace.models import EventConsumer, EventSubscription


@dataclass(frozen=True, slots=True)
class AgentLogin:
    """The agent a broker login belongs to, through a subscription or its event consumer."""

    identity_id: int
    subscription: EventSubscription | None = None
    event_consumer: EventConsumer | None = None


def find_agent_logins(
    users_and_vhosts: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], AgentLogin]:
    """The agents' logins among these (user, vhost) pairs, in two queries."""
    wanted = set(users_and_vhosts)
    logins: dict[tuple[str, str], AgentLogin] = {}
    ids = {parsed for user, _ in wanted if (parsed := _uuid_or_none(user))}
    for sub in EventSubscription.objects.select_related("user").filter(
        uuid__in=ids, agent_identity__isnull=False
    ):
        key = (sub.uuid.hex, sub.user.uuid.hex)
        if key in wanted and sub.agent_identity_id is not None:
            logins[key] = AgentLogin(identity_id=sub.agent_identity_id, subscription=sub)
    for consumer in EventConsumer.objects.select_related("user").filter(
        rmq_username__in={user for user, _ in wanted}
    ):
        key = (consumer.rmq_username, consumer.user.uuid.hex)
        if key in wanted:
            logins[key] = AgentLogin(identity_id=consumer.identity_id, event_consumer=consumer)
    return logins


def _uuid_or_none(value: str) -> uuid.UUID | None:
    if len(value) != 32:
        return None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        return None
