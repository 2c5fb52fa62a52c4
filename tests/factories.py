"""factory_boy factories for the domain."""

import factory
from django.utils import timezone
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentLog,
    AgentProcessor,
    AgentService,
    Customer,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from marketplace.names import AuthKind, AuthorizedVia, LogLevel


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Tester{n}")

    @factory.post_generation
    def token(self, create, extracted, **kwargs):
        if create:
            Token.objects.get_or_create(user=self)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Customer {n}")

    @factory.post_generation
    def owners(self, create, extracted, **kwargs):
        if create and extracted:
            self.owners.add(*extracted)


class OfferingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offering

    name = factory.Sequence(lambda n: f"Offering {n}")
    customer = factory.SubFactory(CustomerFactory)


class AgentIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentIdentity

    offering = factory.SubFactory(OfferingFactory)
    name = factory.Sequence(lambda n: f"agent-{n}")
    version = "1.0.0"
    created_by = factory.SubFactory(UserFactory)


class AgentServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentService

    identity = factory.SubFactory(AgentIdentityFactory)
    name = factory.Sequence(lambda n: f"service-{n}")
    mode = "order_process"


class AgentProcessorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentProcessor

    service = factory.SubFactory(AgentServiceFactory)
    name = factory.Sequence(lambda n: f"Processor{n}")
    backend_type = "slurm"


class EventSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventSubscription

    agent_identity = factory.SubFactory(AgentIdentityFactory)
    user = factory.LazyAttribute(lambda sub: sub.agent_identity.created_by)
    observable_objects = factory.LazyFunction(lambda: [{"object_type": "order"}])


class EventSubscriptionQueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventSubscriptionQueue

    event_subscription = factory.SubFactory(EventSubscriptionFactory)
    offering = factory.LazyAttribute(lambda q: q.event_subscription.agent_identity.offering)
    object_type = "order"


class EventConsumerFactory(factory.django.DjangoModelFactory):
    """An agent's event consumer, owned (as register_queue makes it) by the agent's creator."""

    class Meta:
        model = EventConsumer

    identity = factory.SubFactory(AgentIdentityFactory)
    user = factory.LazyAttribute(lambda consumer: consumer.identity.created_by)
    object_types = factory.LazyFunction(list)
    auth_kind = AuthKind.TOKEN
    auth_token_prefix = "a1b2c3d4"
    auth_token_name = ""
    authorized_via = AuthorizedVia.CUSTOMER_OWNER


class AgentLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentLog

    identity = factory.SubFactory(AgentIdentityFactory)
    timestamp = factory.LazyFunction(timezone.now)
    level = LogLevel.ERROR
    message = factory.Sequence(lambda n: f"backend call {n} failed")
    module = "waldur_site_agent.backend"
