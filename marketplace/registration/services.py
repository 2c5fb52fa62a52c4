"""Writes of the registration path: agent registrations and the broker side they need.

Every registration is idempotent (agents repeat them on every start and polling cycle)
and serialised on its parent row, so concurrent repeats converge on one row. Broker
provisioning runs inside the database transaction: if the broker fails, the transaction
rolls back and a retry starts from a clean slate.
"""

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agentstats.errors import Conflict, InvalidInput
from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from marketplace.names import AgentServiceState
from marketplace.registration.broker_credentials import (
    is_entitled_to_broker_credential,
    issue_broker_password,
    require_broker_owner,
)
from marketplace.registration.consumers import remove_consumer_from_broker
from marketplace.registration.teardown import (
    collect_subscriptions_on_broker,
    lock_vhost_owners,
    remove_subscriptions_from_broker,
    remove_unused_vhosts,
)
from marketplace.registration.vhost_limits import build_owner_vhost_limits
from rmq.client import ManagementClient
from rmq.naming import format_queue_name
from rmq.provisioning import declare_subscription_queue, provision_subscription_access


@dataclass(frozen=True)
class AgentIdentityFields:
    """What an agent reports about itself when it registers."""

    name: str
    version: str
    dependencies: list[dict[str, str]]
    config_file_path: str
    config_file_content: str
    last_restarted: datetime | None

    @classmethod
    def from_validated(cls, data: dict[str, Any]) -> "AgentIdentityFields":
        """Build from validated input, normalising nulls to empty values."""
        return cls(
            name=data["name"],
            version=data.get("version") or "",
            dependencies=[
                {"package": item["package"], "version": item["version"]}
                for item in data.get("dependencies") or []
            ],
            config_file_path=data.get("config_file_path") or "",
            config_file_content=data.get("config_file_content") or "",
            last_restarted=data.get("last_restarted"),
        )

    @classmethod
    def from_identity(cls, identity: AgentIdentity) -> "AgentIdentityFields":
        """The fields an identity holds now."""
        return cls(
            name=identity.name,
            version=identity.version,
            dependencies=list(identity.dependencies),
            config_file_path=identity.config_file_path,
            config_file_content=identity.config_file_content,
            last_restarted=identity.last_restarted,
        )

    def merged(self, data: dict[str, Any]) -> "AgentIdentityFields":
        """These fields with the validated keys of a partial update applied."""
        given = AgentIdentityFields.from_validated({"name": self.name, **data})
        return dataclasses.replace(
            self, **{key: getattr(given, key) for key in data if hasattr(given, key)}
        )


def register_agent_identity(
    offering: Offering, *, actor: User, fields: AgentIdentityFields
) -> tuple[AgentIdentity, bool]:
    """Create the agent for (offering, name), or update it when it exists."""
    with transaction.atomic():
        Offering.objects.select_for_update().filter(pk=offering.pk).first()
        identity = AgentIdentity.objects.filter(offering=offering, name=fields.name).first()
        created = identity is None
        if identity is None:
            identity = AgentIdentity(offering=offering, name=fields.name, created_by=actor)
        _apply_identity_fields(identity, fields)
        identity.save()
    return identity, created


def update_agent_identity(
    identity: AgentIdentity, *, offering: Offering, fields: AgentIdentityFields
) -> AgentIdentity:
    """Overwrite an agent's reported fields (PUT); name and offering stay unique.

    The target offering is locked as registration locks it, so two renames to one name
    cannot both pass the check. A writer that takes no lock (the admin) can still win the
    unique constraint between the check and the save: that is a Conflict (409), and
    nothing is written.
    """
    try:
        with transaction.atomic():
            Offering.objects.select_for_update().filter(pk=offering.pk).first()
            clash = AgentIdentity.objects.filter(offering=offering, name=fields.name).exclude(
                pk=identity.pk
            )
            if clash.exists():
                raise InvalidInput(
                    "This offering already has an agent with this name.", field="name"
                )
            identity.offering = offering
            _apply_identity_fields(identity, fields)
            identity.name = fields.name
            identity.save()
    except IntegrityError as exc:
        raise Conflict(
            "Another agent of this offering took this name meanwhile; reload and retry."
        ) from exc
    return identity


def _apply_identity_fields(identity: AgentIdentity, fields: AgentIdentityFields) -> None:
    identity.version = fields.version
    identity.dependencies = fields.dependencies
    identity.config_file_path = fields.config_file_path
    identity.config_file_content = fields.config_file_content
    if fields.last_restarted is not None:
        identity.last_restarted = fields.last_restarted


def register_agent_service(
    identity: AgentIdentity, *, name: str, mode: str
) -> tuple[AgentService, bool]:
    """Get or create the agent's service by name and mark it Active."""
    with transaction.atomic():
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        service, created = AgentService.objects.get_or_create(
            identity=identity, name=name, defaults={"mode": mode}
        )
        service.mode = mode
        service.state = AgentServiceState.ACTIVE
        service.save()
    return service, created


def register_agent_processor(
    service: AgentService, *, name: str, backend_type: str, backend_version: str
) -> tuple[AgentProcessor, bool]:
    """Get or create the service's processor by name and stamp its last run."""
    with transaction.atomic():
        AgentService.objects.select_for_update().filter(pk=service.pk).first()
        processor, created = AgentProcessor.objects.get_or_create(service=service, name=name)
        processor.backend_type = backend_type
        processor.backend_version = backend_version
        processor.last_run = timezone.now()
        processor.save()
    return processor, created


def set_agent_service_statistics(
    service: AgentService, *, statistics: dict[str, Any]
) -> AgentService:
    """Replace the statistics an agent reports for one service."""
    service.statistics = statistics
    service.save(update_fields=["statistics", "modified"])
    return service


def register_event_subscription(
    identity: AgentIdentity,
    *,
    owner: User,
    object_type: str,
    description: str,
    source_ip: str | None,
    broker: ManagementClient,
) -> tuple[EventSubscription, bool]:
    """Get or create the agent's subscription for one object type, with its broker user.

    Only a current owner of the agent's customer may call it (else a 400: its token would
    become the broker password). A subscription whose owner is no longer entitled is
    deleted (with its broker user) and a new one is made for the caller. The broker side
    (vhost, user, permissions) is provisioned on every call so that a broker that lost
    its state converges on the next registration.
    """
    require_broker_owner(owner, identity)
    with transaction.atomic():
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        subscription = next(
            (
                candidate
                for candidate in identity.event_subscriptions.select_related("user")
                if object_type in candidate.object_types
            ),
            None,
        )
        if subscription is not None and not is_entitled_to_broker_credential(
            subscription.user, identity
        ):
            delete_event_subscription(subscription, broker=broker)
            subscription = None
        created = subscription is None
        if subscription is None:
            subscription = EventSubscription.objects.create(
                user=owner,
                agent_identity=identity,
                observable_objects=[{"object_type": object_type}],
                description=description,
                source_ip=source_ip,
            )
        lock_vhost_owners([subscription.user_id])
        _provision_subscription(subscription, broker=broker)
    return subscription, created


def _provision_subscription(subscription: EventSubscription, *, broker: ManagementClient) -> None:
    """Provision the subscription's broker user with its owner's current token, and record
    that token's digest (the revocation sweep compares it)."""
    password, digest = issue_broker_password(subscription.user)
    if subscription.broker_credential_digest != digest:
        subscription.broker_credential_digest = digest
        subscription.save(update_fields=["broker_credential_digest", "modified"])
    provision_subscription_user(subscription, broker=broker, password=password)


def provision_subscription_user(
    subscription: EventSubscription, *, broker: ManagementClient, password: str
) -> None:
    """Provision the owner's vhost limits and the subscription's user with `password`; the
    user may read exactly the queues its rows name (reset whenever a queue is added)."""
    queue_names = [
        format_queue_name(
            subscription_hex=subscription.uuid.hex,
            offering_hex=offering_uuid.hex,
            object_type=object_type,
        )
        for offering_uuid, object_type in subscription.queues.values_list(
            "offering__uuid", "object_type"
        )
    ]
    provision_subscription_access(
        broker,
        vhost=subscription.user.uuid.hex,
        username=subscription.uuid.hex,
        password=password,
        queue_names=queue_names,
        limits=build_owner_vhost_limits(subscription.user),
    )


def create_subscription_queue(
    subscription: EventSubscription,
    *,
    offering: Offering,
    object_type: str,
    broker: ManagementClient,
) -> tuple[EventSubscriptionQueue, bool]:
    """Get or create the subscription's queue row and declare the durable queue.

    The owner's vhost limits (counting this queue) and the user's read permission (naming
    it) are provisioned first; the service declares the queue, the agent only reads it.
    """
    with transaction.atomic():
        EventSubscription.objects.select_for_update().filter(pk=subscription.pk).first()
        queue, created = EventSubscriptionQueue.objects.select_related(
            "event_subscription__user", "offering"
        ).get_or_create(event_subscription=subscription, offering=offering, object_type=object_type)
        _provision_subscription(queue.event_subscription, broker=broker)
        declare_subscription_queue(broker, vhost=queue.vhost, name=queue.queue_name)
    return queue, created


def delete_event_subscription(subscription: EventSubscription, *, broker: ManagementClient) -> None:
    """Delete a subscription with its broker user and queues, and its owner's vhost when
    nothing else uses it; the rows stay if the broker fails."""
    with transaction.atomic():
        lock_vhost_owners([subscription.user_id])
        rows = EventSubscription.objects.filter(pk=subscription.pk)
        rows.select_for_update().values_list("pk", flat=True).first()
        collected = collect_subscriptions_on_broker(rows)
        subscription.delete()
        remove_subscriptions_from_broker(collected, broker=broker)
        remove_unused_vhosts(collected.owners, broker=broker)


def delete_agent_identity(identity: AgentIdentity, *, broker: ManagementClient) -> None:
    """Delete an agent with its services, subscriptions and event consumer, their broker
    users and queues, and each owner's vhost that nothing else uses; the rows stay if the
    broker fails."""
    with transaction.atomic():
        # The agent first, then the owners: the order registration locks them in.
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        collected = collect_subscriptions_on_broker(identity.event_subscriptions.all())
        consumer = EventConsumer.objects.select_related("user").filter(identity=identity).first()
        owners = collected.owners + ([consumer.user] if consumer is not None else [])
        lock_vhost_owners(owner.pk for owner in owners)
        identity.delete()
        remove_subscriptions_from_broker(collected, broker=broker)
        if consumer is not None:
            remove_consumer_from_broker(consumer, broker=broker)
        remove_unused_vhosts(owners, broker=broker)
