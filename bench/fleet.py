"""The database side of the synthetic fleet, grown in place with bulk inserts.

Shaped like a real fleet: one owner per service provider (customer), hence one broker
vhost per provider; two offerings per provider; four services and three event
subscriptions per agent; one queue row per subscription. Agent i always gets the same
provider, offering and names, so growing from N to M agents inserts only agents
N..M-1 and their children.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentService,
    Customer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from marketplace.names import AgentServiceState, ObservableObjectType
from rmq.naming import format_queue_name

SUPPORT_USERNAME = "bench-support"
OWNER_PREFIX = "bench-owner-"
CUSTOMER_PREFIX = "Bench provider "
OFFERINGS_PER_CUSTOMER = 2
SERVICE_NAMES = ("order_processing", "membership_sync", "report", "event_processing")
OBJECT_TYPES = (
    ObservableObjectType.ORDER,
    ObservableObjectType.RESOURCE,
    ObservableObjectType.USER_ROLE,
)
BATCH_SIZE = 2000


@dataclass(frozen=True)
class BrokerSubscription:
    """What the broker needs of one subscription: its user, vhost, password and queue."""

    index: int
    username: str
    vhost: str
    password: str
    queue_name: str


@dataclass(frozen=True)
class FleetGrowth:
    """What one growth step added, as the broker needs it."""

    new_vhosts: tuple[str, ...]
    new_subscriptions: tuple[BrokerSubscription, ...]


@dataclass(frozen=True)
class _Provider:
    owner: User
    token: str
    offerings: tuple[Offering, ...]


def ensure_support_token() -> str:
    """Create the support user (is_support) and return its API token."""
    user, _ = User.objects.get_or_create(username=SUPPORT_USERNAME, defaults={"is_support": True})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def count_agents() -> int:
    """Agents the bench database holds now."""
    return AgentIdentity.objects.count()


@dataclass(frozen=True)
class FleetShape:
    """How agents map to providers: a fixed number of them, or a fixed size each."""

    providers: int = 0
    agents_per_provider: int = 0

    def provider_of(self, agent_index: int) -> int:
        if self.agents_per_provider:
            return agent_index // self.agents_per_provider
        return agent_index % self.providers

    def count_providers(self, agents: int) -> int:
        return len({self.provider_of(index) for index in range(agents)})


def grow_fleet(target_agents: int, *, shape: FleetShape) -> FleetGrowth:
    """Insert agents count_agents()..target_agents-1 with their children."""
    start = count_agents()
    if start >= target_agents:
        return FleetGrowth(new_vhosts=(), new_subscriptions=())
    indices = range(start, target_agents)
    with transaction.atomic():
        providers, new_vhosts = _ensure_providers(
            sorted({shape.provider_of(index) for index in indices})
        )
        agents = AgentIdentity.objects.bulk_create(
            [_build_agent(index, providers[shape.provider_of(index)]) for index in indices],
            batch_size=BATCH_SIZE,
        )
        AgentService.objects.bulk_create(
            [
                AgentService(
                    identity=agent,
                    name=name,
                    mode=name,
                    state=_service_state(index, position),
                    statistics={"processed": index},
                )
                for index, agent in zip(indices, agents, strict=True)
                for position, name in enumerate(SERVICE_NAMES)
            ],
            batch_size=BATCH_SIZE,
        )
        subscriptions = EventSubscription.objects.bulk_create(
            [
                EventSubscription(
                    user=agent.created_by,
                    agent_identity=agent,
                    observable_objects=[{"object_type": object_type}],
                    description=f"bench {agent.name} {object_type}",
                    source_ip="127.0.0.1",
                )
                for agent in agents
                for object_type in OBJECT_TYPES
            ],
            batch_size=BATCH_SIZE,
        )
        owners_of = [agent for agent in agents for _ in OBJECT_TYPES]
        EventSubscriptionQueue.objects.bulk_create(
            [
                EventSubscriptionQueue(
                    event_subscription=subscription,
                    offering=agent.offering,
                    object_type=object_type,
                )
                for subscription, agent, object_type in _with_object_types(subscriptions, owners_of)
            ],
            batch_size=BATCH_SIZE,
        )
    tokens = {provider.owner.uuid.hex: provider.token for provider in providers.values()}
    return FleetGrowth(
        new_vhosts=tuple(new_vhosts),
        new_subscriptions=tuple(
            _to_broker_subscription(
                start * len(OBJECT_TYPES) + position,
                subscription,
                offering=agent.offering,
                object_type=object_type,
                password=tokens[subscription.user.uuid.hex],
            )
            for position, (subscription, agent, object_type) in enumerate(
                _with_object_types(subscriptions, owners_of)
            )
        ),
    )


def list_broker_subscriptions() -> list[BrokerSubscription]:
    """Every subscription of the fleet in creation order, as the broker knows it."""
    queues = (
        EventSubscriptionQueue.objects.select_related("event_subscription__user", "offering")
        .order_by("event_subscription_id", "id")
        .iterator(chunk_size=BATCH_SIZE)
    )
    tokens = dict(Token.objects.values_list("user_id", "key"))
    return [
        _to_broker_subscription(
            index,
            queue.event_subscription,
            offering=queue.offering,
            object_type=queue.object_type,
            password=tokens[queue.event_subscription.user_id],
        )
        for index, queue in enumerate(queues)
    ]


def _ensure_providers(customer_indices: Iterable[int]) -> tuple[dict[int, _Provider], list[str]]:
    """The providers with these indices: existing ones loaded, missing ones inserted."""
    suffixes = {index: f"{index:05d}" for index in customer_indices}
    owner_names = [OWNER_PREFIX + suffix for suffix in suffixes.values()]
    existing = set(User.objects.filter(username__in=owner_names).values_list("username", flat=True))
    missing = [suffix for suffix in suffixes.values() if OWNER_PREFIX + suffix not in existing]
    new_owners = User.objects.bulk_create(
        [
            User(username=OWNER_PREFIX + suffix, first_name="Provider", last_name=suffix)
            for suffix in missing
        ]
    )
    Token.objects.bulk_create([Token(key=Token.generate_key(), user=owner) for owner in new_owners])
    customers = Customer.objects.bulk_create(
        [Customer(name=CUSTOMER_PREFIX + suffix) for suffix in missing]
    )
    Customer.owners.through.objects.bulk_create(
        [
            Customer.owners.through(customer_id=customer.pk, user_id=owner.pk)
            for customer, owner in zip(customers, new_owners, strict=True)
        ]
    )
    Offering.objects.bulk_create(
        [
            Offering(name=f"{customer.name} offering {number}", customer=customer)
            for customer in customers
            for number in range(OFFERINGS_PER_CUSTOMER)
        ]
    )
    owners = {owner.username: owner for owner in User.objects.filter(username__in=owner_names)}
    tokens = dict(Token.objects.filter(user__in=owners.values()).values_list("user_id", "key"))
    offerings: dict[str, list[Offering]] = {}
    for offering in Offering.objects.filter(
        customer__name__in=[CUSTOMER_PREFIX + suffix for suffix in suffixes.values()]
    ).select_related("customer"):
        offerings.setdefault(offering.customer.name, []).append(offering)
    providers = {
        index: _Provider(
            owner=owners[OWNER_PREFIX + suffix],
            token=tokens[owners[OWNER_PREFIX + suffix].pk],
            offerings=tuple(offerings[CUSTOMER_PREFIX + suffix]),
        )
        for index, suffix in suffixes.items()
    }
    return providers, [owner.uuid.hex for owner in new_owners]


def _build_agent(index: int, provider: _Provider) -> AgentIdentity:
    return AgentIdentity(
        offering=provider.offerings[index % len(provider.offerings)],
        name=f"agent-{index:05d}",
        version="1.0.0",
        dependencies=[{"package": "waldur-site-agent", "version": "1.0.0"}],
        config_file_path="/etc/waldur/site-agent.yaml",
        last_restarted=timezone.now(),
        created_by=provider.owner,
    )


def _service_state(agent_index: int, position: int) -> str:
    """Mostly Active, with a few Idle and Error services scattered through the fleet."""
    if (agent_index + position) % 17 == 0:
        return AgentServiceState.ERROR
    if (agent_index + position) % 5 == 0:
        return AgentServiceState.IDLE
    return AgentServiceState.ACTIVE


def _with_object_types(
    subscriptions: Sequence[EventSubscription], agents: Sequence[AgentIdentity]
) -> list[tuple[EventSubscription, AgentIdentity, str]]:
    return [
        (subscription, agent, subscription.observable_objects[0]["object_type"])
        for subscription, agent in zip(subscriptions, agents, strict=True)
    ]


def _to_broker_subscription(
    index: int,
    subscription: EventSubscription,
    *,
    offering: Offering,
    object_type: str,
    password: str,
) -> BrokerSubscription:
    return BrokerSubscription(
        index=index,
        username=subscription.uuid.hex,
        vhost=subscription.user.uuid.hex,
        password=password,
        queue_name=format_queue_name(
            subscription_hex=subscription.uuid.hex,
            offering_hex=offering.uuid.hex,
            object_type=object_type,
        ),
    )
