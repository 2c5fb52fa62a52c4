"""`manage.py reconcile_broker`: one run, its counts on one line, `--dry-run` writes
nothing, and a broker that cannot be asked is exit code 3."""

from io import StringIO
from typing import Any

import pytest
import requests
import responses
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.models import BrokerOrphan
from rmq.naming import SERVICE_VHOST_TAG
from tests.factories import EventSubscriptionQueueFactory
from tests.kit.broker import MANAGEMENT
from tests.marketplace.consumers.management import ANY_RESOURCE

pytestmark = pytest.mark.django_db


def mock_broker_with_a_lost_queue(broker: responses.RequestsMock) -> str:
    """An own vhost whose queue row the broker does not list; return the queue's path."""
    queue: Any = EventSubscriptionQueueFactory()
    broker.add(
        responses.GET,
        f"{MANAGEMENT}/api/vhosts",
        json=[{"name": queue.vhost, "tags": [SERVICE_VHOST_TAG]}],
    )
    for resource in ("queues", "users", "permissions"):
        broker.add(responses.GET, f"{MANAGEMENT}/api/{resource}", json=[])
    broker.add(responses.PUT, ANY_RESOURCE, status=201)
    return f"/api/queues/{queue.vhost}/{queue.queue_name}"


def run(*argv: str) -> str:
    out = StringIO()
    call_command("reconcile_broker", *argv, stdout=out)
    return out.getvalue()


def test_the_command_runs_the_reconcile_once_and_prints_its_counts(broker):
    # given
    path = mock_broker_with_a_lost_queue(broker)

    # when
    output = run()

    # then
    assert output.startswith("queues_redeclared 1, users_removed 0")
    assert [(call.request.method, call.request.path_url) for call in broker.calls][-1] == (
        "PUT",
        path,
    )


def test_a_dry_run_prints_what_it_would_do_and_writes_nothing(broker):
    # given
    mock_broker_with_a_lost_queue(broker)

    # when
    output = run("--dry-run")

    # then
    assert output.startswith("Would do (dry run): queues_redeclared 1")
    assert {call.request.method for call in broker.calls} == {"GET"}
    assert not BrokerOrphan.objects.exists()


def test_a_broker_that_cannot_be_asked_is_exit_code_3(broker):
    # given
    broker.add(responses.GET, f"{MANAGEMENT}/api/vhosts", body=requests.ConnectionError("no"))

    # when / then
    with pytest.raises(CommandError, match="The broker cannot be asked") as raised:
        run()
    assert raised.value.returncode == 3
