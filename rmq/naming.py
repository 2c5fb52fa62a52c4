"""Broker names: a legacy subscription's queue `subscription_<sub hex>_offering_<offering
hex>_<type>`, a unified event consumer's `consumer_<consumer hex>`, the 32-hex broker users
and the tag that marks the service's own vhosts.

The one place that formats them, parses them and builds the broker permissions that
confine a broker user to its own queues. Pure: no HTTP, no project code.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

SUBSCRIPTION_QUEUE_PREFIX = "subscription_"
CONSUMER_QUEUE_PREFIX = "consumer_"
_HEX32 = "[0-9a-f]{32}"
_SUBSCRIPTION_QUEUE = re.compile(
    rf"^{SUBSCRIPTION_QUEUE_PREFIX}(?P<sub>{_HEX32})_offering_(?P<offering>{_HEX32})"
    r"_(?P<type>\w+)$"
)


# The broker is shared: vhosts the service provisions carry this tag (and description),
# and housekeeping never touches a vhost without it.
SERVICE_VHOST_TAG = "agentstats"
SERVICE_VHOST_METADATA = {
    "description": "agentstats: an agent owner's vhost",
    "tags": SERVICE_VHOST_TAG,
}


@dataclass(frozen=True, slots=True)
class SubscriptionQueueName:
    """The parts of a subscription queue's name."""

    subscription_hex: str
    offering_hex: str
    object_type: str


def format_queue_name(*, subscription_hex: str, offering_hex: str, object_type: str) -> str:
    """Return the queue the real agent consumes for one subscription, offering and type."""
    return f"{SUBSCRIPTION_QUEUE_PREFIX}{subscription_hex}_offering_{offering_hex}_{object_type}"


def parse_queue_name(name: str) -> SubscriptionQueueName | None:
    """Split a subscription queue's name into its parts; None for any other name."""
    match = _SUBSCRIPTION_QUEUE.match(name)
    if match is None:
        return None
    return SubscriptionQueueName(
        subscription_hex=match.group("sub"),
        offering_hex=match.group("offering"),
        object_type=match.group("type"),
    )


def parse_queue_object_type(name: str) -> str | None:
    """Return the object type a subscription queue's name ends with, or None."""
    parsed = parse_queue_name(name)
    return parsed.object_type if parsed else None


def is_subscription_queue_name(name: str) -> bool:
    """Whether a queue is named like a subscription's (its kind is then "legacy")."""
    return name.startswith(SUBSCRIPTION_QUEUE_PREFIX)


# The permission regex that matches no resource: the default exchange is checked as
# `amq.default`, so not even publishing through it is granted.
NOTHING_PATTERN = "^$"


def build_queues_read_pattern(queue_names: Iterable[str]) -> str:
    """Return the permission regex that matches exactly these queues (none: `^$`)."""
    names = sorted(set(queue_names))
    if not names:
        return NOTHING_PATTERN
    return "^(?:" + "|".join(re.escape(name) for name in names) + ")$"


def format_consumer_queue_name(consumer_hex: str) -> str:
    """Return the unified queue of one event consumer (waldur-site-agent 1.0.7+)."""
    return f"{CONSUMER_QUEUE_PREFIX}{consumer_hex}"


def is_consumer_queue_name(name: str) -> bool:
    """Whether a queue is named like an event consumer's (its kind is then "consumer")."""
    return re.fullmatch(rf"{CONSUMER_QUEUE_PREFIX}{_HEX32}", name) is not None


def build_consumer_queue_pattern(consumer_hex: str) -> str:
    """Return the permission regex that matches exactly one event consumer's queue."""
    return rf"^{re.escape(format_consumer_queue_name(consumer_hex))}$"


def is_service_queue_name(name: str) -> bool:
    """Whether a queue is named like one the service declares (a subscription's or a
    consumer's)."""
    return parse_queue_name(name) is not None or is_consumer_queue_name(name)


def is_service_username(name: str) -> bool:
    """Whether a broker user is named like the service's (a uuid's 32 lower-case hex)."""
    return re.fullmatch(_HEX32, name) is not None
