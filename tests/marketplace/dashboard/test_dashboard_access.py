"""Who may see the fleet dashboard (/admin/fleet/ and its table): staff and active support
users, who sign in on the admin's own login form and get their own logout."""

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.kit.broker import SNAPSHOT_CALLS, mock_broker_snapshot
from tests.kit.dashboard import PAGE, TABLE, client_logged_in_as


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
    client = Client() if role == "anonymous" else client_logged_in_as(request.getfixturevalue(role))

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
    client = client_logged_in_as(support)
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
    page = client_logged_in_as(support_user).get(PAGE).content.decode()

    # then the user tools log out through the session logout the support user may use
    assert '<form id="logout-form" method="post" action="/api-auth/logout/">' in page
    assert 'action="/admin/logout/"' not in page
    assert '<a href="/admin/">Home</a>' not in page


def test_support_logout_form_ends_the_session(fleet, support_user):
    # given support on the dashboard
    client = client_logged_in_as(support_user)

    # when they press the page's log out button
    response = client.post("/api-auth/logout/")

    # then they are signed out and the dashboard sends them to the login form
    assert response.status_code == 200
    assert "Logged out" in response.content.decode()
    assert client.get(PAGE)["Location"] == f"/admin/login/?next={PAGE}"


def test_admin_index_links_the_dashboard(superuser):
    # when staff open the admin index
    page = client_logged_in_as(superuser).get("/admin/").content.decode()

    # then it lists the fleet dashboard
    assert '<a href="/admin/fleet/">Live fleet dashboard</a>' in page
