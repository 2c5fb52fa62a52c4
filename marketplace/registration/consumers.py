"""Writes of an agent's unified event consumer (waldur-site-agent 1.0.7+): one queue for
every event type, registered with `register_queue`.

Like every registration it is idempotent and serialised on the agent's row, so
concurrent repeats converge on one consumer; the broker side (vhost, durable queue, user
with the caller's API token as password, read-only permission) is provisioned inside
the database transaction on every call, so a broker failure writes nothing and a broker
that lost its state converges on the next registration.
"""

from dataclasses import dataclass

from django.db import transaction
from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from agentstats.errors import Conflict
from agentstats.models import User
from marketplace.access import find_identity_right
from marketplace.models import AgentIdentity, EventConsumer
from marketplace.names import AuthKind, AuthorizedVia
from marketplace.registration.broker_credentials import (
    is_entitled_to_broker_credential,
    issue_broker_password,
    require_broker_owner,
)
from marketplace.registration.teardown import lock_vhost_owners, remove_unused_vhosts
from marketplace.registration.vhost_limits import build_owner_vhost_limits
from rmq.client import ManagementClient
from rmq.provisioning import deprovision_consumer, provision_consumer


@dataclass(frozen=True)
class ConsumerCaller:
    """Who registers an agent's event consumer, and how it got in."""

    user: User
    auth_kind: AuthKind
    authorized_via: AuthorizedVia


def describe_auth_kind(authenticator: object) -> AuthKind:
    """The kind of credential a request got in with, from its DRF authenticator.

    This service issues DRF tokens and sessions only: personal access tokens (`pat`) and
    OIDC never authenticate a request here.
    """
    if isinstance(authenticator, TokenAuthentication):
        return AuthKind.TOKEN
    if isinstance(authenticator, SessionAuthentication):
        return AuthKind.SESSION
    return AuthKind.UNKNOWN


def describe_consumer_caller(
    user: User, identity: AgentIdentity, *, authenticator: object
) -> ConsumerCaller | None:
    """The caller as its consumer records it; None when it may not manage the agent."""
    right = find_identity_right(user, identity)
    if right is None:
        return None
    return ConsumerCaller(
        user=user, auth_kind=describe_auth_kind(authenticator), authorized_via=right
    )


def register_event_consumer(
    identity: AgentIdentity,
    *,
    caller: ConsumerCaller,
    object_types: list[str] | None,
    broker: ManagementClient,
) -> tuple[EventConsumer, bool]:
    """Get or create the agent's event consumer, owned by the caller, and provision it.

    Only a current owner of the agent's customer may call it (else a 400: its token would
    become the broker password). `object_types` None keeps the stored filter (empty on
    creation), `[]` means every type. Another entitled owner's consumer is a Conflict:
    nothing is written; one whose owner is no longer entitled (inactive, or not an owner
    of the agent's customer any more) is deleted with its broker side and made anew for
    the caller, with a fresh broker user. The caller's API token becomes the broker
    password again on every call, and how the caller got in is recorded anew.
    """
    require_broker_owner(caller.user, identity)
    with transaction.atomic():
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        lock_vhost_owners([caller.user.pk])
        consumer = EventConsumer.objects.select_related("user").filter(identity=identity).first()
        if consumer is not None and not is_entitled_to_broker_credential(consumer.user, identity):
            delete_event_consumer(consumer, broker=broker)
            consumer = None
        if consumer is not None and consumer.user_id != caller.user.pk:
            raise Conflict(
                "Another user registered this agent's event queue; it stays theirs until "
                "the agent or its event consumer is deleted.",
                code="queue_registered_by_another_user",
            )
        created = consumer is None
        if consumer is None:
            consumer = EventConsumer(identity=identity, user=caller.user)
        if object_types is not None:
            consumer.object_types = object_types
        consumer.auth_kind = caller.auth_kind
        # Only personal access tokens carry a prefix and a name; this service has none.
        consumer.auth_token_prefix = ""
        consumer.auth_token_name = ""
        consumer.authorized_via = caller.authorized_via
        password, consumer.broker_credential_digest = issue_broker_password(caller.user)
        consumer.save()
        provision_consumer(
            broker,
            vhost=consumer.vhost,
            username=consumer.rmq_username,
            password=password,
            consumer_hex=consumer.uuid.hex,
            limits=build_owner_vhost_limits(caller.user),
        )
    return consumer, created


def remove_consumer_from_broker(consumer: EventConsumer, *, broker: ManagementClient) -> None:
    """Delete a consumer's broker user and queue (call inside the row's deletion)."""
    deprovision_consumer(
        broker,
        vhost=consumer.vhost,
        username=consumer.rmq_username,
        consumer_hex=consumer.uuid.hex,
    )


def delete_event_consumer(consumer: EventConsumer, *, broker: ManagementClient) -> None:
    """Delete a consumer with its broker user and queue, and its owner's vhost when nothing
    else uses it; the row stays if the broker fails."""
    with transaction.atomic():
        lock_vhost_owners([consumer.user_id])
        consumer.delete()
        remove_consumer_from_broker(consumer, broker=broker)
        remove_unused_vhosts([consumer.user], broker=broker)
