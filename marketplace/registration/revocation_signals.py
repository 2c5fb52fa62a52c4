"""The immediate path of revocation: when a token, a user or a customer's owners change,
check that user's broker credentials right after the change commits.

Best effort: a broker that fails is logged (never a secret) and left to the sweep
(`run_revoke_broker_credentials`), which applies the same rules every 30 s. A deleted
user's rows go with it, so its broker users are written down as pending removals in the
same transaction, for this path and the sweep to remove.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import BrokerUserRemoval, Customer, EventConsumer, EventSubscription
from marketplace.registration.revocation import (
    revoke_broker_credentials,
    revoke_broker_credentials_of_users,
)
from rmq.client import ManagementClient

DISPATCH_PREFIX = "agentstats-revoke-"


def connect_revocation_signals() -> None:
    """Connect the receivers (idempotent: each has a dispatch uid)."""
    post_save.connect(_on_token_saved, sender=Token, dispatch_uid=f"{DISPATCH_PREFIX}token-save")
    post_delete.connect(_on_token_deleted, sender=Token, dispatch_uid=f"{DISPATCH_PREFIX}token-del")
    post_save.connect(_on_user_saved, sender=User, dispatch_uid=f"{DISPATCH_PREFIX}user-save")
    pre_delete.connect(_on_user_deleting, sender=User, dispatch_uid=f"{DISPATCH_PREFIX}user-del")
    m2m_changed.connect(
        _on_owners_changed, sender=Customer.owners.through, dispatch_uid=f"{DISPATCH_PREFIX}owners"
    )


def disconnect_revocation_signals() -> None:
    """Disconnect them (tests prove the sweep alone revokes)."""
    post_save.disconnect(sender=Token, dispatch_uid=f"{DISPATCH_PREFIX}token-save")
    post_delete.disconnect(sender=Token, dispatch_uid=f"{DISPATCH_PREFIX}token-del")
    post_save.disconnect(sender=User, dispatch_uid=f"{DISPATCH_PREFIX}user-save")
    pre_delete.disconnect(sender=User, dispatch_uid=f"{DISPATCH_PREFIX}user-del")
    m2m_changed.disconnect(sender=Customer.owners.through, dispatch_uid=f"{DISPATCH_PREFIX}owners")


def schedule_user_revocation(user_ids: Iterable[int]) -> None:
    """Check these users' broker credentials once the current transaction commits."""
    ids = sorted(set(user_ids))
    if ids:
        transaction.on_commit(lambda: _revoke_now(ids))


def _revoke_now(user_ids: list[int]) -> None:
    # A failing broker is counted and logged there, and left to the sweep.
    revoke_broker_credentials_of_users(user_ids, broker=ManagementClient.from_settings())


def _on_token_saved(sender: Any, instance: Token, created: bool, **kwargs: Any) -> None:
    if created:
        schedule_user_revocation([instance.user_id])


def _on_token_deleted(sender: Any, instance: Token, **kwargs: Any) -> None:
    schedule_user_revocation([instance.user_id])


def _on_user_saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        schedule_user_revocation([instance.pk])


def _on_user_deleting(sender: Any, instance: User, **kwargs: Any) -> None:
    removals = [
        BrokerUserRemoval(username=sub.uuid.hex, vhost=instance.uuid.hex)
        for sub in EventSubscription.objects.filter(user=instance)
    ] + [
        BrokerUserRemoval(
            username=consumer.rmq_username, vhost=instance.uuid.hex, consumer_hex=consumer.uuid.hex
        )
        for consumer in EventConsumer.objects.filter(user=instance)
    ]
    if not removals:
        return
    BrokerUserRemoval.objects.bulk_create(removals, ignore_conflicts=True)
    usernames = [removal.username for removal in removals]
    transaction.on_commit(lambda: _remove_now(usernames))


def _remove_now(usernames: list[str]) -> None:
    revoke_broker_credentials(
        subscriptions=EventSubscription.objects.none(),
        consumers=EventConsumer.objects.none(),
        removals=BrokerUserRemoval.objects.filter(username__in=usernames),
        broker=ManagementClient.from_settings(),
    )


def _on_owners_changed(
    sender: Any,
    instance: Customer | User,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if action not in {"post_remove", "pre_clear"}:
        return
    if reverse:
        schedule_user_revocation([instance.pk])
    elif action == "post_remove":
        schedule_user_revocation(pk_set or ())
    else:
        schedule_user_revocation(instance.owners.values_list("pk", flat=True))  # type: ignore[union-attr]
