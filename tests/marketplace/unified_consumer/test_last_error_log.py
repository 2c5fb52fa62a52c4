"""The latest ERROR/CRITICAL line an agent shipped: in its envelope as `last_error_log`, and
on its dashboard row, for the whole fleet in a fixed number of queries."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentIdentityFactory, AgentLogFactory
from tests.kit.broker import mock_broker_snapshot

GET_CONNECTION = "/api/agents/get_connection/"
TABLE = "/admin/fleet/table/"
MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
T0 = datetime(2026, 5, 4, 3, 2, 1, 250000, tzinfo=UTC)


def last_error_log(client, identity):
    response = client.post(GET_CONNECTION, {"instance_id": str(identity.uuid)}, format="json")
    assert response.status_code == 200
    return response.json()["connection"]["last_error_log"]


def test_envelope_has_no_last_error_log_without_an_alerting_line(identity, owner, client_for):
    # given only INFO and WARNING lines, and another agent's ERROR
    AgentLogFactory(identity=identity, level="INFO", timestamp=T0)
    AgentLogFactory(identity=identity, level="WARNING", timestamp=T0 + timedelta(seconds=1))
    AgentLogFactory(identity=AgentIdentityFactory(offering=identity.offering), level="ERROR")

    # then
    assert last_error_log(client_for(owner), identity) is None


def test_envelope_shows_the_latest_error_or_critical_line(identity, owner, client_for):
    # given an old ERROR, a newer CRITICAL, and a newer WARNING
    AgentLogFactory(identity=identity, level="ERROR", timestamp=T0 - timedelta(hours=1))
    AgentLogFactory(
        identity=identity,
        level="CRITICAL",
        timestamp=T0,
        message="SLURM backend unreachable",
        module="waldur_site_agent_slurm.backend",
    )
    AgentLogFactory(identity=identity, level="WARNING", timestamp=T0 + timedelta(minutes=1))

    # then the CRITICAL line is the envelope's last_error_log
    assert last_error_log(client_for(owner), identity) == {
        "at": "2026-05-04T03:02:01.250000Z",
        "level": "CRITICAL",
        "message": "SLURM backend unreachable",
        "module": "waldur_site_agent_slurm.backend",
    }


def test_of_two_lines_logged_at_the_same_moment_the_one_shipped_last_wins(
    identity, owner, client_for
):
    AgentLogFactory(identity=identity, level="CRITICAL", timestamp=T0, message="first")
    AgentLogFactory(identity=identity, level="ERROR", timestamp=T0, message="second", module="")

    assert last_error_log(client_for(owner), identity) == {
        "at": "2026-05-04T03:02:01.250000Z",
        "level": "ERROR",
        "message": "second",
        "module": "",
    }


@pytest.fixture
def dashboard(support_user, broker):
    mock_broker_snapshot(broker, base=MANAGEMENT)
    client = Client()
    client.force_login(support_user)
    return client


def test_dashboard_row_shows_when_and_what_went_wrong_last_truncated_and_escaped(
    identity, dashboard
):
    # given a long ERROR line with markup in it
    message = "<script>alert(1)</script> " + "x" * 300
    AgentLogFactory(identity=identity, level="ERROR", timestamp=T0, message=message)

    # when
    response = dashboard.get(TABLE)

    # then the row says when, at which level, from which module, and the start of it
    (row,) = response.context["table"].rows
    assert (row.last_error.at, row.last_error.level) == (T0, "ERROR")
    page = response.content.decode()
    shown = re.search(r'<span class="fleet-agent__error" title="[^"]*">(.*?)</span>', page)
    assert shown is not None
    assert shown.group(1).startswith(
        'last ERROR <time datetime="2026-05-04T03:02:01.250000+00:00">2026-05-04 03:02:01 UTC'
        "</time> in waldur_site_agent.backend: &lt;script&gt;alert(1)&lt;/script&gt; xxx"
    )
    message_shown = html.unescape(shown.group(1).split(": ", 1)[1])
    assert (len(message_shown), message_shown[-1]) == (120, "\u2026")
    assert "<script>alert(1)" not in page


def test_dashboard_shows_no_error_line_for_an_agent_without_one(identity, dashboard):
    AgentLogFactory(identity=identity, level="INFO")

    response = dashboard.get(TABLE)

    assert response.context["table"].rows[0].last_error is None
    assert "fleet-agent__error" not in response.content.decode()


def test_dashboard_costs_the_same_queries_with_error_lines_for_1_and_20_agents(identity, dashboard):
    # given one agent with error lines
    AgentLogFactory.create_batch(3, identity=identity)
    with CaptureQueriesContext(connection) as one:
        dashboard.get(TABLE)

    # when nineteen more agents have error lines of their own
    for _ in range(19):
        AgentLogFactory.create_batch(3, identity=AgentIdentityFactory(offering=identity.offering))
    with CaptureQueriesContext(connection) as twenty:
        response = dashboard.get(TABLE)

    # then every row has its line and the query count did not grow
    assert all(row.last_error is not None for row in response.context["table"].rows)
    assert len(response.context["table"].rows) == 20
    assert len(twenty) == len(one)
