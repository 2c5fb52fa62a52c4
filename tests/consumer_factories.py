"""factory_boy factories for the unified event consumer and the log lines agents ship."""

import factory
from django.utils import timezone

from marketplace.models import AgentLog, EventConsumer
from marketplace.names import AuthKind, AuthorizedVia, LogLevel
from tests.factories import AgentIdentityFactory


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
