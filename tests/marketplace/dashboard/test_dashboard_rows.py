"""What each row of the fleet dashboard shows, with the management API mocked by
`responses`: badges, since, source IP, services, queues, links, and the summary."""

import pytest
from django.contrib.auth.models import Permission

from marketplace.dashboard.context import DashboardRow, QueueCell, ServiceBadge
from tests.factories import EventSubscriptionQueueFactory, UserFactory
from tests.kit.broker import mock_broker_snapshot
from tests.kit.dashboard import CONNECTED_AT, PAGE, TABLE, client_logged_in_as, rows_html


def test_rows_show_badges_since_ip_services_and_queues(fleet, superuser):
    # when an admin opens the dashboard
    response = client_logged_in_as(superuser).get(PAGE)

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
    rows = rows_html(response.content.decode())
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
    page = client_logged_in_as(support_user).get(TABLE).content.decode()

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
    page = client_logged_in_as(support_user).get(TABLE).content.decode()

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
    page = client_logged_in_as(viewer).get(PAGE).content.decode()

    # then
    link = f'<a href="/admin/marketplace/agentidentity/{fleet["alpha"].pk}/change/">alpha</a>'
    assert (link in page) is has_link


def test_support_users_see_names_without_admin_links(fleet, support_user):
    # when support opens the table
    page = client_logged_in_as(support_user).get(TABLE).content.decode()

    # then the name is plain text: the change page is staff-only
    assert "/admin/marketplace/agentidentity/" not in page
    assert '<th scope="row" class="fleet-agent__name">alpha<span' in page


def test_no_agents_is_said_in_the_table(db, broker, support_user):
    # given an empty fleet and a broker that answers
    mock_broker_snapshot(broker)

    # when
    page = client_logged_in_as(support_user).get(TABLE).content.decode()

    # then
    assert '<td colspan="8" class="fleet-empty">No agents match these filters.</td>' in page
