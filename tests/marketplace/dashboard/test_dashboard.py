"""The fleet dashboard at /admin/fleet/ and its table at /admin/fleet/table/, with the
management API mocked by `responses`: who may see it, what each row shows, how it filters,
and what it shows instead of a table when a filter is bad or the broker cannot be asked."""

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from marketplace.dashboard.context import DashboardRow, QueueCell, ServiceBadge
from marketplace.models import AgentServiceState
from tests.factories import (
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.broker import CONNECTIONS_URL, QUEUES_URL, SNAPSHOT_CALLS, mock_broker_snapshot
from tests.kit.fleet import Fleet

PAGE = "/admin/fleet/"
TABLE = "/admin/fleet/table/"
CONNECTED_AT = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)
BROKER_DOWN = "RabbitMQ cannot be asked: RabbitMQ management API is unreachable"


def _client_logged_in_as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rows_html(page: str) -> dict[str, str]:
    """Each agent row's HTML, by agent uuid."""
    return {
        match.group("uuid"): match.group(0)
        for match in re.finditer(
            r'<tr class="fleet-agent" data-agent-uuid="(?P<uuid>[0-9a-f-]{36})".*?</tr>',
            page,
            flags=re.DOTALL,
        )
    }


@pytest.fixture
def fleet(db, broker):
    """alpha (connected from 10.1.2.3, consumed order queue, ACTIVE + ERROR services) at
    Uni/HPC; beta (disconnected, 5 messages in a resource queue nobody reads, IDLE) at
    Lab/Cloud; the broker mocked with exactly that."""
    owner = UserFactory()
    uni = CustomerFactory(name="Uni", owners=[owner])
    lab = CustomerFactory(name="Lab", owners=[owner])
    hpc = OfferingFactory(customer=uni, name="HPC")
    cloud = OfferingFactory(customer=lab, name="Cloud")
    fleet = Fleet()
    alpha = fleet.add_agent(
        "alpha",
        offering=hpc,
        version="1.0.0",
        created_by=owner,
        services={"orders": AgentServiceState.ACTIVE, "sync": AgentServiceState.ERROR},
    )
    beta = fleet.add_agent(
        "beta",
        offering=cloud,
        version="0.9.0",
        created_by=owner,
        services={"orders": AgentServiceState.IDLE},
    )
    alpha_queue = fleet.add_queue(
        alpha,
        "order",
        messages=2,
        consumers=1,
        connected_from="10.1.2.3",
        connected_at=CONNECTED_AT,
    )
    beta_queue = fleet.add_queue(beta, "resource", messages=5, consumers=0)
    fleet.mock(broker)
    return {
        "uni": uni,
        "lab": lab,
        "hpc": hpc,
        "alpha": alpha,
        "beta": beta,
        "alpha_queue": alpha_queue,
        "beta_queue": beta_queue,
    }


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


# --- who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [PAGE, TABLE])
@pytest.mark.parametrize(
    ("role", "expected_status"),
    [("anonymous", 302), ("user", 403), ("owner", 403), ("support_user", 200), ("staff_user", 200)],
)
def test_dashboard_is_open_to_staff_and_support_only(
    path, role, expected_status, request, identity, broker
):
    # given an agent and a broker that answers
    mock_broker_snapshot(broker)
    client = (
        Client() if role == "anonymous" else _client_logged_in_as(request.getfixturevalue(role))
    )

    # when
    response = client.get(path)

    # then
    assert response.status_code == expected_status
    assert len(broker.calls) == (SNAPSHOT_CALLS if expected_status == 200 else 0)
    if role == "anonymous":
        assert response["Location"] == f"/admin/login/?next={path}"


def test_inactive_support_user_is_refused(db, broker):
    # given a support user whose account was deactivated after signing in
    support = UserFactory(is_support=True)
    client = _client_logged_in_as(support)
    support.is_active = False
    support.save()

    # when
    response = client.get(PAGE)

    # then the session no longer counts (Django logs inactive users out)
    assert response.status_code == 302
    assert len(broker.calls) == 0


def test_support_user_signs_in_through_the_admin_login_form(db, broker):
    # given a support user who is not staff
    mock_broker_snapshot(broker)
    support = UserFactory(username="helpdesk", is_support=True)
    support.set_password("a-long-test-password")
    support.save()
    client = Client()

    # when they sign in on the admin login form on their way to the dashboard
    response = client.post(
        f"/admin/login/?next={PAGE}",
        {"username": "helpdesk", "password": "a-long-test-password", "next": PAGE},
    )

    # then they land on the dashboard, and the rest of the admin stays closed to them
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert client.get(PAGE).status_code == 200
    admin_page = client.get("/admin/marketplace/agentidentity/")
    assert admin_page.status_code == 302
    assert admin_page["Location"] == "/admin/login/?next=/admin/marketplace/agentidentity/"
    login_page = client.get("/admin/login/")
    assert 'Support users may open the <a href="/admin/fleet/">fleet dashboard</a>' in (
        login_page.content.decode()
    )


def test_plain_user_cannot_sign_in_through_the_admin_login_form(db):
    # given a user who is neither staff nor support
    plain = UserFactory(username="someone")
    plain.set_password("a-long-test-password")
    plain.save()

    # when they try the admin login form
    response = Client().post(
        "/admin/login/", {"username": "someone", "password": "a-long-test-password"}
    )

    # then the form refuses them as Django's admin always did
    assert response.status_code == 200
    assert "Please enter the correct username and password for a staff account" in (
        response.content.decode()
    )
    assert "_auth_user_id" not in response.wsgi_request.session


def test_support_page_has_its_own_logout_and_no_admin_home_link(fleet, support_user):
    # when support opens the dashboard
    page = _client_logged_in_as(support_user).get(PAGE).content.decode()

    # then the user tools log out through the session logout the support user may use
    assert '<form id="logout-form" method="post" action="/api-auth/logout/">' in page
    assert 'action="/admin/logout/"' not in page
    assert '<a href="/admin/">Home</a>' not in page


def test_support_logout_form_ends_the_session(fleet, support_user):
    # given support on the dashboard
    client = _client_logged_in_as(support_user)

    # when they press the page's log out button
    response = client.post("/api-auth/logout/")

    # then they are signed out and the dashboard sends them to the login form
    assert response.status_code == 200
    assert "Logged out" in response.content.decode()
    assert client.get(PAGE)["Location"] == f"/admin/login/?next={PAGE}"


def test_admin_index_links_the_dashboard(superuser):
    # when staff open the admin index
    page = _client_logged_in_as(superuser).get("/admin/").content.decode()

    # then it lists the fleet dashboard
    assert '<a href="/admin/fleet/">Live fleet dashboard</a>' in page


# --- what each row shows -------------------------------------------------------------------


def test_rows_show_badges_since_ip_services_and_queues(fleet, superuser):
    # when an admin opens the dashboard
    response = _client_logged_in_as(superuser).get(PAGE)

    # then there is one row per agent, in offering order, with everything the broker said
    alpha, beta = fleet["alpha"], fleet["beta"]
    assert response.status_code == 200
    assert response.context["table"].rows == (
        DashboardRow(
            uuid=beta.uuid,
            name="beta",
            offering_name="Cloud",
            version="0.9.0",
            is_connected=False,
            connected_since=None,
            source_ips=(),
            services=(ServiceBadge(name="orders", state="IDLE"),),
            queues=(
                QueueCell(
                    name=fleet["beta_queue"].queue_name,
                    label="resource",
                    messages=5,
                    consumers=0,
                    exists_on_broker=True,
                ),
            ),
            admin_url=f"/admin/marketplace/agentidentity/{beta.pk}/change/",
            timeline_url=f"/admin/marketplace/agentconnectionevent/?identity__uuid={beta.uuid}",
        ),
        DashboardRow(
            uuid=alpha.uuid,
            name="alpha",
            offering_name="HPC",
            version="1.0.0",
            is_connected=True,
            connected_since=CONNECTED_AT,
            source_ips=("10.1.2.3",),
            services=(
                ServiceBadge(name="orders", state="ACTIVE"),
                ServiceBadge(name="sync", state="ERROR"),
            ),
            queues=(
                QueueCell(
                    name=fleet["alpha_queue"].queue_name,
                    label="order",
                    messages=2,
                    consumers=1,
                    exists_on_broker=True,
                ),
            ),
            admin_url=f"/admin/marketplace/agentidentity/{alpha.pk}/change/",
            timeline_url=f"/admin/marketplace/agentconnectionevent/?identity__uuid={alpha.uuid}",
        ),
    )
    rows = _rows_html(response.content.decode())
    assert list(rows) == [str(beta.uuid), str(alpha.uuid)]
    alpha_html, beta_html = rows[str(alpha.uuid)], rows[str(beta.uuid)]
    assert 'data-connected="true"' in alpha_html
    assert '<span class="fleet-badge fleet-badge--connected">connected</span>' in alpha_html
    assert '<time datetime="2025-11-24T16:00:00+00:00">2025-11-24 16:00:00 UTC</time>' in (
        alpha_html
    )
    assert '<td class="fleet-agent__ip">10.1.2.3</td>' in alpha_html
    assert 'class="fleet-state fleet-state--active" title="orders: ACTIVE"' in alpha_html
    assert 'class="fleet-state fleet-state--error" title="sync: ERROR"' in alpha_html
    assert 'class="fleet-queue" title="' in alpha_html
    assert "order: 2 msg / 1 consumer<" in alpha_html
    assert "fleet-queue--stalled" not in alpha_html
    assert 'data-connected="false"' in beta_html
    assert '<span class="fleet-badge fleet-badge--disconnected">disconnected</span>' in beta_html
    assert '<td class="fleet-agent__ip">&ndash;</td>' in beta_html
    assert 'class="fleet-state fleet-state--idle" title="orders: IDLE"' in beta_html
    assert 'class="fleet-queue fleet-queue--stalled"' in beta_html
    assert "resource: 5 msg / 0 consumers<" in beta_html
    assert f'<a href="/admin/marketplace/agentidentity/{alpha.pk}/change/">admin</a>' in (
        alpha_html
    )


def test_summary_counts_the_listed_agents(fleet, support_user):
    # when support opens the table
    page = _client_logged_in_as(support_user).get(TABLE).content.decode()

    # then the summary says what the rows say
    assert "<strong>2</strong> agents:" in page
    assert '<span class="fleet-summary__connected">1 connected</span>' in page
    assert '<span class="fleet-summary__disconnected">1 disconnected</span>' in page
    assert "7 queued messages" in page


def test_queue_missing_on_the_broker_is_marked_and_not_a_warning(db, broker, support_user):
    # given an agent whose queue the broker does not have
    queue = EventSubscriptionQueueFactory()
    mock_broker_snapshot(broker)

    # when
    page = _client_logged_in_as(support_user).get(TABLE).content.decode()

    # then it is struck through as missing, with no pile-up warning
    assert f'class="fleet-queue fleet-queue--missing" title="{queue.queue_name} (missing' in page
    assert "fleet-queue--stalled" not in page


@pytest.mark.parametrize(
    ("role", "has_link"),
    [("superuser", True), ("staff_with_view_permission", True), ("staff_user", False)],
)
def test_admin_links_only_for_users_the_change_page_would_open_for(
    role, has_link, request, fleet, db
):
    # given a viewer: staff without model permissions would bounce off the change page
    if role == "staff_with_view_permission":
        viewer = UserFactory(is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_agentidentity"))
    else:
        viewer = request.getfixturevalue(role)

    # when
    page = _client_logged_in_as(viewer).get(PAGE).content.decode()

    # then
    link = f'<a href="/admin/marketplace/agentidentity/{fleet["alpha"].pk}/change/">alpha</a>'
    assert (link in page) is has_link


def test_support_users_see_names_without_admin_links(fleet, support_user):
    # when support opens the table
    page = _client_logged_in_as(support_user).get(TABLE).content.decode()

    # then the name is plain text: the change page is staff-only
    assert "/admin/marketplace/agentidentity/" not in page
    assert '<th scope="row" class="fleet-agent__name">alpha<span' in page


def test_no_agents_is_said_in_the_table(db, broker, support_user):
    # given an empty fleet and a broker that answers
    mock_broker_snapshot(broker)

    # when
    page = _client_logged_in_as(support_user).get(TABLE).content.decode()

    # then
    assert '<td colspan="8" class="fleet-empty">No agents match these filters.</td>' in page


# --- filters and search ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected_names"),
    [
        ({}, ["beta", "alpha"]),
        ({"name": "ALP"}, ["alpha"]),
        ({"connected": "false"}, ["beta"]),
        ({"connected": "true"}, ["alpha"]),
        ({"service_state": "error"}, ["alpha"]),
        ({"service_state": "IDLE"}, ["beta"]),
        ({"offering_uuid": "hpc"}, ["alpha"]),
        ({"customer_uuid": "lab"}, ["beta"]),
        (
            {"name": "", "offering_uuid": "", "connected": "", "service_state": ""},
            ["beta", "alpha"],
        ),
        ({"name": "nobody"}, []),
    ],
)
def test_filters_narrow_the_rows(query, expected_names, fleet, support_user):
    # given the filter form's values (uuids by fixture name; empty means "any")
    params = {
        key: str(fleet[value].uuid) if key.endswith("_uuid") and value else value
        for key, value in query.items()
    }
    client = _client_logged_in_as(support_user)

    # when the page and its table are asked with them
    page = client.get(PAGE, params)
    table = client.get(TABLE, params)

    # then both list exactly the matching agents
    assert page.status_code == table.status_code == 200
    assert [row.name for row in page.context["table"].rows] == expected_names
    assert [row.name for row in table.context["table"].rows] == expected_names


def test_form_shows_the_chosen_filters_and_every_offering_and_customer(fleet, support_user):
    # when support filters by offering, connection and service state
    hpc = fleet["hpc"]
    page = (
        _client_logged_in_as(support_user)
        .get(
            PAGE,
            {"offering_uuid": str(hpc.uuid), "connected": "true", "service_state": "active"},
        )
        .content.decode()
    )

    # then the form keeps those choices and offers every offering and customer
    assert f'<option value="{hpc.uuid}" selected>Uni / HPC</option>' in page
    assert f'<option value="{fleet["lab"].uuid}">Lab</option>' in page
    assert f'<option value="{fleet["uni"].uuid}">Uni</option>' in page
    assert '<option value="true" selected>yes</option>' in page
    assert '<option value="ACTIVE" selected>ACTIVE</option>' in page


@pytest.mark.parametrize("path", [PAGE, TABLE])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"service_state": "BROKEN"}, "service_state: Must be one of ACTIVE, IDLE, ERROR."),
        ({"offering_uuid": "not-a-uuid"}, "offering_uuid: Must be a valid UUID."),
        ({"connected": "maybe"}, "connected: &quot;maybe&quot; is not a valid choice."),
    ],
)
def test_invalid_filter_is_explained_instead_of_the_table(
    path, query, message, support_user, broker, db
):
    # when support asks with a value the API would reject
    response = _client_logged_in_as(support_user).get(path, query)

    # then the page says what is wrong, shows no table and does not ask the broker
    page = response.content.decode()
    assert response.status_code == 400
    assert f"<li>{message}</li>" in page
    assert 'id="fleet-agents"' not in page
    assert len(broker.calls) == 0


# --- the in-place refresh ----------------------------------------------------------------------


def test_page_wires_the_refresh_to_the_table_view(db, broker, support_user, settings):
    # given a refresh period
    settings.DASHBOARD_REFRESH_SECONDS = 7
    mock_broker_snapshot(broker)

    # when
    page = _client_logged_in_as(support_user).get(PAGE).content.decode()

    # then the page tells its script where to fetch the table and how often
    assert 'data-refresh-url="/admin/fleet/table/"' in page
    assert 'data-refresh-seconds="7"' in page
    assert '<script src="/static/agentstats/fleet_dashboard.js" defer></script>' in page


def test_table_view_serves_the_table_alone_and_marks_it(fleet, support_user):
    # when the page's script asks for the table
    response = _client_logged_in_as(support_user).get(TABLE, {"name": "beta"})

    # then it gets the fragment (no page around it), never cached, marked as the table
    page = response.content.decode()
    assert response.status_code == 200
    assert response["X-Fleet-Table"] == "1"
    assert "no-cache" in response["Cache-Control"]
    assert "<html" not in page
    assert 'id="fleet-filters"' not in page
    assert list(_rows_html(page)) == [str(fleet["beta"].uuid)]


def test_table_costs_the_same_queries_for_one_agent_and_for_twenty(support_user, broker, db):
    # given a broker that answers and a signed-in support user
    mock_broker_snapshot(broker, connections=[], queues=[])
    client = _client_logged_in_as(support_user)
    EventSubscriptionQueueFactory()

    # when the table is read with one agent, then with twenty
    with CaptureQueriesContext(connection) as one:
        client.get(TABLE)
    for _ in range(19):
        AgentServiceFactory(
            identity=EventSubscriptionQueueFactory().event_subscription.agent_identity
        )
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(TABLE)

    # then the number of queries does not grow with the fleet
    assert response.context["table"].summary.total_agents == 20
    assert len(twenty) == len(one)


# --- the broker cannot be asked ------------------------------------------------------------------


@pytest.mark.parametrize("path", [PAGE, TABLE])
@pytest.mark.parametrize(
    ("broker_answer", "banner"),
    [
        ({"body": requests.ConnectionError("refused")}, BROKER_DOWN),
        ({"status": 500}, "RabbitMQ cannot be asked: RabbitMQ management API failed with HTTP 500"),
        (
            {"status": 401},
            "RabbitMQ cannot be asked: RabbitMQ management API rejected the configured credentials",
        ),
    ],
)
def test_broker_down_shows_a_banner_and_no_table(
    path, broker_answer, banner, fleet, support_user, broker
):
    # given a broker that refuses, fails or rejects our credentials
    broker.reset()
    broker.add(responses.GET, CONNECTIONS_URL, **broker_answer)
    broker.add(responses.GET, QUEUES_URL, **broker_answer)

    # when
    response = _client_logged_in_as(support_user).get(path)

    # then a red banner says so, and nothing claims an agent is disconnected
    page = response.content.decode()
    assert response.status_code == 503
    assert (
        f'<div class="fleet-banner fleet-banner--broker-down" role="alert">{banner}</div>' in page
    )
    assert 'id="fleet-agents"' not in page
    assert "disconnected" not in page
    assert {urlsplit(call.request.url).path for call in broker.calls} >= {"/api/connections"}
