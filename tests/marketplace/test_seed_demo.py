"""The demo data command."""

from io import StringIO

from django.core.management import call_command
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
)


def run_seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_creates_fleet_once_and_prints_support_token(real_broker):
    # when the demo is seeded twice against the real broker
    first = run_seed_demo()
    second = run_seed_demo()

    # then the fleet exists once, with provisioned subscriptions and queues
    support = User.objects.get(username="support")
    assert support.is_support is True
    token = Token.objects.get(user=support).key
    assert f"API token: {token}" in first
    assert f"API token: {token}" in second
    assert AgentIdentity.objects.count() == 4
    assert AgentService.objects.count() == 12
    assert EventSubscription.objects.count() == 8
    assert EventSubscriptionQueue.objects.count() == 8


def test_seed_demo_without_broker_seeds_agents_and_says_why_subscriptions_are_missing(db, settings):
    # given no broker
    settings.RABBITMQ_MANAGEMENT_URL = "http://127.0.0.1:9"

    # when the demo is seeded
    output = run_seed_demo()

    # then agents and services exist, no half-provisioned subscription does, and it says so
    assert AgentIdentity.objects.count() == 4
    assert AgentService.objects.count() == 12
    assert EventSubscription.objects.count() == 0
    assert "RabbitMQ did not answer" in output
