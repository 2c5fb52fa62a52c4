"""The read path of the connection stats: agent rows in a fixed number of queries, the
broker snapshot in a fixed number of calls, and their merge."""

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from agentstats.connections import (
    AgentRow,
    ConnectionReport,
    ServiceRow,
    SubscriptionRow,
    build_connection_report,
)
from agentstats.report_data import JSONObject, prepare_agents, render_report
from marketplace.models import (
    AgentIdentity,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
    format_queue_name,
)
from rmq.client import ManagementClient
from rmq.snapshot_cache import SnapshotWait, wait_for_broker_snapshot

Prepared = TypeVar("Prepared")
SHARED_ANSWER_KEY = "agentstats:connection-stats:"
_LINE_SEPARATOR = "\u2028".encode()
_PARAGRAPH_SEPARATOR = "\u2029".encode()


@dataclass(frozen=True)
class AgentFilters:
    """What the caller narrowed the fleet to; None means no narrowing."""

    agent_uuid: UUID | None = None
    offering_uuid: UUID | None = None
    customer_uuid: UUID | None = None
    service_state: str | None = None
    name: str | None = None
    connected: bool | None = None


def list_agent_rows(filters: AgentFilters) -> list[AgentRow]:
    """Load the filtered agents with services, subscriptions and queues in 4 queries.

    Plain tuples (values_list), not model instances: at fleet scale building model
    objects costs several times the SQL itself.
    """
    identities = _filtered_identities(filters)
    chosen = identities.values("id")
    services: dict[int, list[ServiceRow]] = defaultdict(list)
    for identity_id, uuid, name, state, modified in (
        AgentService.objects.filter(identity__in=chosen)
        .order_by("name", "id")
        .values_list("identity_id", "uuid", "name", "state", "modified")
    ):
        services[identity_id].append(
            ServiceRow(uuid=uuid, name=name, state=state.upper(), modified=modified)
        )
    queue_names: dict[int, list[str]] = defaultdict(list)
    for subscription_id, subscription_uuid, offering_uuid, object_type in (
        EventSubscriptionQueue.objects.filter(event_subscription__agent_identity__in=chosen)
        .order_by("created", "id")
        .values_list(
            "event_subscription_id", "event_subscription__uuid", "offering__uuid", "object_type"
        )
    ):
        queue_names[subscription_id].append(
            format_queue_name(
                subscription_hex=subscription_uuid.hex,
                offering_hex=offering_uuid.hex,
                object_type=object_type,
            )
        )
    subscriptions: dict[int, list[SubscriptionRow]] = defaultdict(list)
    for identity_id, subscription_id, uuid, created, owner_uuid, observed in (
        EventSubscription.objects.filter(agent_identity__in=chosen)
        .order_by("created", "id")
        .values_list(
            "agent_identity_id", "id", "uuid", "created", "user__uuid", "observable_objects"
        )
    ):
        subscriptions[identity_id].append(
            SubscriptionRow(
                uuid=uuid,
                created=created,
                vhost=owner_uuid.hex,
                object_types=tuple(
                    item["object_type"] for item in observed if "object_type" in item
                ),
                queue_names=tuple(queue_names[subscription_id]),
            )
        )
    return [
        AgentRow(
            uuid=uuid,
            name=name,
            offering_uuid=offering_uuid,
            offering_name=offering_name,
            version=version,
            # The SDK requires a time here; an agent that never reported one counts from
            # its registration.
            last_restarted=last_restarted or created,
            user_uuid=user_uuid,
            user_username=username,
            user_full_name=f"{first_name} {last_name}".strip() if user_uuid else None,
            user_is_staff=is_staff,
            services=tuple(services[identity_id]),
            subscriptions=tuple(subscriptions[identity_id]),
        )
        for (
            identity_id,
            uuid,
            name,
            offering_uuid,
            offering_name,
            version,
            last_restarted,
            created,
            user_uuid,
            username,
            first_name,
            last_name,
            is_staff,
        ) in identities.values_list(
            "id",
            "uuid",
            "name",
            "offering__uuid",
            "offering__name",
            "version",
            "last_restarted",
            "created",
            "created_by__uuid",
            "created_by__username",
            "created_by__first_name",
            "created_by__last_name",
            "created_by__is_staff",
        )
    ]


def is_known_agent(agent_uuid: UUID) -> bool:
    """Whether an agent with this uuid exists (checked before asking the broker)."""
    return AgentIdentity.objects.filter(uuid=agent_uuid).exists()


def fetch_connection_report(filters: AgentFilters, *, broker: ManagementClient) -> ConnectionReport:
    """Build the report; raises BrokerError when the broker cannot be asked."""
    rows, _, wait = _load_while_asking_broker(filters, broker=broker, prepare=len)
    return build_connection_report(rows, wait.snapshot, connected=filters.connected)


def fetch_connection_stats_data(filters: AgentFilters, *, broker: ManagementClient) -> JSONObject:
    """The endpoint's response body; raises BrokerError when the broker cannot be asked.

    The database half of the response is built while the broker answers; after the
    snapshot arrives only the merge and the live fields remain.
    """
    data, _ = _build_connection_stats_data(filters, broker=broker)
    return data


@dataclass(frozen=True)
class _SharedAnswer:
    body: bytes
    taken_at: float


@dataclass(frozen=True)
class StatsAnswer:
    """The JSON body, and how this request got its broker snapshot (None: it was served
    a shared answer and needed none)."""

    body: bytes
    snapshot_wait: SnapshotWait | None


def fetch_connection_stats_json(filters: AgentFilters, *, broker: ManagementClient) -> StatsAnswer:
    """The endpoint's response body as JSON, shared through the cache by every request with
    the same filters while its broker snapshot is fresh (BROKER_SNAPSHOT_TTL).

    Pollers asking for the same picture then cost one cache read each, not the database
    work and the rendering of every agent again; a database change shows within the TTL,
    as a broker change does. Raises BrokerError when the broker cannot be asked.
    """
    ttl = settings.BROKER_SNAPSHOT_TTL
    key = SHARED_ANSWER_KEY + hashlib.sha256(repr(filters).encode()).hexdigest()
    if ttl > 0:
        shared = cache.get(key)
        if isinstance(shared, _SharedAnswer) and time.time() - shared.taken_at < ttl:
            return StatsAnswer(body=shared.body, snapshot_wait=None)
    data, wait = _build_connection_stats_data(filters, broker=broker)
    body = render_json(data)
    if ttl > 0:
        taken_at = wait.snapshot.taken_at.timestamp()
        cache.set(key, _SharedAnswer(body=body, taken_at=taken_at), timeout=ttl)
    return StatsAnswer(body=body, snapshot_wait=wait)


def render_json(data: JSONObject) -> bytes:
    """The body exactly as the API's JSON renderer (DRF's) writes it, five times faster.

    Both write compact UTF-8; DRF also escapes U+2028 and U+2029 for embedding in scripts.
    """
    body = orjson.dumps(data)
    # Both separators start with the same two UTF-8 bytes: one scan usually settles it.
    if _LINE_SEPARATOR[:2] in body:
        body = body.replace(_LINE_SEPARATOR, rb"\u2028").replace(_PARAGRAPH_SEPARATOR, rb"\u2029")
    return body


def _build_connection_stats_data(
    filters: AgentFilters, *, broker: ManagementClient
) -> tuple[JSONObject, SnapshotWait]:
    rows, prepared, wait = _load_while_asking_broker(filters, broker=broker, prepare=prepare_agents)
    report = build_connection_report(rows, wait.snapshot, connected=filters.connected)
    return render_report(report, prepared), wait


def _load_while_asking_broker(
    filters: AgentFilters,
    *,
    broker: ManagementClient,
    prepare: Callable[[list[AgentRow]], Prepared],
) -> tuple[list[AgentRow], Prepared, SnapshotWait]:
    # The answer takes as long as the slower of the broker and the database work, not
    # their sum: the snapshot is fetched in a thread while the rows load.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rmq-snapshot") as pool:
        pending = pool.submit(wait_for_broker_snapshot, broker)
        rows = list_agent_rows(filters)
        prepared = prepare(rows)
        wait = pending.result()
    return rows, prepared, wait


def _filtered_identities(filters: AgentFilters) -> QuerySet[AgentIdentity]:
    queryset = AgentIdentity.objects.all()
    if filters.agent_uuid is not None:
        queryset = queryset.filter(uuid=filters.agent_uuid)
    if filters.offering_uuid is not None:
        queryset = queryset.filter(offering__uuid=filters.offering_uuid)
    if filters.customer_uuid is not None:
        queryset = queryset.filter(offering__customer__uuid=filters.customer_uuid)
    if filters.name:
        queryset = queryset.filter(name__icontains=filters.name)
    if filters.service_state is not None:
        queryset = queryset.filter(services__state=filters.service_state).distinct()
    return queryset.order_by("offering__name", "name", "id")
