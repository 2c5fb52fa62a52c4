"""Broker credentials that end: the sweep (and the immediate path the signals take).

Every legacy subscription and event consumer has a broker user whose password is its
owner's API token. For each, the first that applies:

- its owner is inactive, or no longer an owner of the agent's customer: the row is deleted
  through its delete service (which removes the broker user, closing its connections), so
  a valid owner re-registering gets fresh credentials;
- its owner has no API token any more: the broker user is deleted (its connections close
  with it) and the row marked revoked; re-registering provisions it again;
- its owner's token is not the one the row was provisioned with (the stored digest
  differs): the broker user is deleted, which closes its open connections, and
  provisioned again with the current token, so the old token works nowhere.

Broker users whose rows went with a deleted owner are removed from the pending list
written at that deletion. An unavailable broker stops the run: what is left is done by
the next one. Nothing here logs a token or a password.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from rest_framework.authtoken.models import Token

from marketplace.models import BrokerUserRemoval, Customer, EventConsumer, EventSubscription
from marketplace.registration.broker_credentials import REVOKED_DIGEST, digest_token_key
from marketplace.registration.consumers import delete_event_consumer
from marketplace.registration.services import delete_event_subscription, provision_subscription_user
from marketplace.registration.vhost_limits import build_owner_vhost_limits
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError, BrokerUnavailable
from rmq.provisioning import (
    delete_broker_user,
    deprovision_consumer,
    provision_consumer,
)

logger = logging.getLogger(__name__)

OUTCOMES = ("deleted", "revoked", "rotated", "removed", "failed")


@dataclass
class _Run:
    broker: ManagementClient
    counts: Counter[str]


def run_revoke_broker_credentials(*, now: datetime) -> dict[str, int]:
    """Revoke every broker credential that no longer matches its owner's rights or token
    (run every 30 s by the job engine); return how many rows had each outcome.

    `now` is the engine's clock, logged with the result; the decisions read only the
    current rows and tokens.
    """
    counts = revoke_broker_credentials(
        subscriptions=EventSubscription.objects.all(),
        consumers=EventConsumer.objects.all(),
        removals=BrokerUserRemoval.objects.all(),
        broker=ManagementClient.from_settings(),
    )
    if any(counts[name] for name in OUTCOMES):
        logger.info("broker credential sweep at %s: %s", now.isoformat(), counts)
    return counts


def revoke_broker_credentials_of_users(
    user_ids: Iterable[int], *, broker: ManagementClient
) -> dict[str, int]:
    """The same rules for the rows of these users only (the immediate path)."""
    ids = list(user_ids)
    return revoke_broker_credentials(
        subscriptions=EventSubscription.objects.filter(user_id__in=ids),
        consumers=EventConsumer.objects.filter(user_id__in=ids),
        removals=BrokerUserRemoval.objects.none(),
        broker=broker,
    )


def revoke_broker_credentials(
    *,
    subscriptions: QuerySet[EventSubscription],
    consumers: QuerySet[EventConsumer],
    removals: QuerySet[BrokerUserRemoval],
    broker: ManagementClient,
) -> dict[str, int]:
    """Apply the rules to these rows and pending removals; stop at an unavailable broker
    (a broker that refuses one row's call is counted as failed, and the run goes on)."""
    run = _Run(broker=broker, counts=Counter())
    steps: list[tuple[Callable[..., None], object]] = [
        *((_judge_subscription, row) for row in _with_entitlement(subscriptions, "agent_identity")),
        *((_judge_consumer, row) for row in _with_entitlement(consumers, "identity")),
        *((_remove, row) for row in removals),
    ]
    for step, row in steps:
        try:
            step(row, run=run)
        except BrokerUnavailable:
            run.counts["failed"] += 1
            logger.warning("broker credential revocation stopped: the broker is unavailable")
            break
        except BrokerError:
            run.counts["failed"] += 1
            logger.warning("broker credential revocation: the broker refused a call")
    return {name: run.counts[name] for name in OUTCOMES}


def _with_entitlement(queryset: QuerySet[Any], identity_field: str) -> QuerySet[Any]:
    """Rows with their owner, agent, whether the owner owns the agent's customer now and
    its current token key, in one query whatever the number of rows."""
    owns = Customer.owners.through.objects.filter(
        customer_id=OuterRef(f"{identity_field}__offering__customer_id"),
        user_id=OuterRef("user_id"),
    )
    token = Token.objects.filter(user_id=OuterRef("user_id")).values("key")[:1]
    return queryset.select_related("user", identity_field).annotate(
        is_owner=Exists(owns), token_key=Subquery(token)
    )


def _judge_subscription(subscription: EventSubscription, *, run: _Run) -> None:
    if not (subscription.user.is_active and subscription.is_owner):  # type: ignore[attr-defined]
        delete_event_subscription(subscription, broker=run.broker)
        run.counts["deleted"] += 1
        return

    def reprovision(password: str) -> None:
        provision_subscription_user(subscription, broker=run.broker, password=password)

    _converge_password(
        subscription, username=subscription.uuid.hex, reprovision=reprovision, run=run
    )


def _judge_consumer(consumer: EventConsumer, *, run: _Run) -> None:
    if not (consumer.user.is_active and consumer.is_owner):  # type: ignore[attr-defined]
        delete_event_consumer(consumer, broker=run.broker)
        run.counts["deleted"] += 1
        return

    def reprovision(password: str) -> None:
        provision_consumer(
            run.broker,
            vhost=consumer.vhost,
            username=consumer.rmq_username,
            password=password,
            consumer_hex=consumer.uuid.hex,
            limits=build_owner_vhost_limits(consumer.user),
        )

    _converge_password(consumer, username=consumer.rmq_username, reprovision=reprovision, run=run)


def _converge_password(
    row: EventSubscription | EventConsumer,
    *,
    username: str,
    reprovision: Callable[[str], None],
    run: _Run,
) -> None:
    """Make the broker password the owner's current token, or remove the user without one.

    A rotated token deletes the broker user and provisions it again with the new token:
    deleting closes every connection of the user at once, while the management API lists
    a new connection only seconds later, so closing the listed ones would miss a
    connection opened just before (and changing a password closes none). A row marked
    revoked waits for its re-registration; a row without a digest (made before digests
    were stored) is converged once, as if rotated.
    """
    if row.broker_credential_digest == REVOKED_DIGEST:
        return
    key: str | None = row.token_key  # type: ignore[union-attr]
    if key is None:
        delete_broker_user(run.broker, username=username)
        _store_digest(row, REVOKED_DIGEST)
        run.counts["revoked"] += 1
        return
    current = digest_token_key(key)
    if current == row.broker_credential_digest:
        return
    delete_broker_user(run.broker, username=username)
    reprovision(key)
    _store_digest(row, current)
    run.counts["rotated"] += 1


def _store_digest(row: EventSubscription | EventConsumer, digest: str) -> None:
    type(row).objects.filter(pk=row.pk).update(broker_credential_digest=digest)


def _remove(removal: BrokerUserRemoval, *, run: _Run) -> None:
    if removal.consumer_hex:
        deprovision_consumer(
            run.broker,
            vhost=removal.vhost,
            username=removal.username,
            consumer_hex=removal.consumer_hex,
        )
    else:
        delete_broker_user(run.broker, username=removal.username)
    removal.delete()
    run.counts["removed"] += 1
