"""The site-agent API's paths, as the SDK and the agent call them."""

from typing import Any

IDENTITIES = "/api/marketplace-site-agent-identities/"
SERVICES = "/api/marketplace-site-agent-services/"
PROCESSORS = "/api/marketplace-site-agent-processors/"
SUBSCRIPTIONS = "/api/event-subscriptions/"
QUEUES = "/api/event-subscription-queues/"
STATS_URL = "/api/marketplace-site-agent-connection-stats/"


def identity_url(identity: Any, action: str = "") -> str:
    return f"{IDENTITIES}{identity.uuid.hex}/{action}"


def subscription_url(subscription: Any, action: str = "") -> str:
    return f"{SUBSCRIPTIONS}{subscription.uuid.hex}/{action}"
