"""Broker credentials as registration leaves them, and the changes that revoke them: a
rotated or deleted API token, a deactivated user, an owner removed from its customer."""

from typing import Any

from rest_framework.authtoken.models import Token

from marketplace.models import EventConsumer, EventSubscription
from marketplace.registration.broker_credentials import digest_token_key
from tests.factories import EventConsumerFactory, EventSubscriptionFactory


def token_key(user: Any) -> str:
    """The user's API token (created when it has none)."""
    return Token.objects.get_or_create(user=user)[0].key


def provisioned_subscription(identity: Any, user: Any, **fields: Any) -> EventSubscription:
    """A subscription of `user` on the agent, as registration stores it (with the digest of
    its owner's current token)."""
    return EventSubscriptionFactory(
        agent_identity=identity,
        user=user,
        broker_credential_digest=digest_token_key(token_key(user)),
        **fields,
    )


def provisioned_consumer(identity: Any, user: Any) -> EventConsumer:
    """The agent's event consumer of `user`, as register_queue stores it."""
    return EventConsumerFactory(
        identity=identity, user=user, broker_credential_digest=digest_token_key(token_key(user))
    )


def rotate_token(user: Any) -> str:
    """Rotate the user's API token as DRF does it (delete, create); return the new key."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key


def deactivate(user: Any) -> None:
    user.is_active = False
    user.save()
