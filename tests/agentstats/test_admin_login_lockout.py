"""Admin log-in attempts are throttled (django-axes): real POSTs to the admin login form on
PostgreSQL lock out one username from one address after ADMIN_LOGIN_FAILURE_LIMIT failures,
for ADMIN_LOGIN_COOLOFF_SECONDS; other pairs are untouched."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.db.models import F
from django.test import Client

from tests.factories import UserFactory

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin(real_postgres):
    user = UserFactory(username="ops", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(username: str, password: str, *, address: str = "203.0.113.7"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, secure=True
    )
    return response, client


def fail(times: int, username: str = "ops", *, address: str = "203.0.113.7") -> list[int]:
    return [log_in(username, "wrong", address=address)[0].status_code for _ in range(times)]


def test_the_right_password_logs_in(admin):
    response, client = log_in("ops", PASSWORD)

    assert response.status_code == 302
    assert client.get("/admin/", secure=True).status_code == 200


def test_repeated_failures_lock_the_username_out_from_that_address(admin):
    # given as many failed log-ins as the limit allows (the form answers each with 200)
    limit = django_settings.AXES_FAILURE_LIMIT
    codes = fail(limit)

    # when the right password comes next from the same address
    response, client = log_in("ops", PASSWORD)

    # then the last failure already locked the pair out: a clear 429, and no session
    assert codes == [200] * (limit - 1) + [429]
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert client.get("/admin/", secure=True).status_code == 302


def test_a_lockout_is_per_username_and_address(admin):
    # given ops is locked out from one address
    fail(django_settings.AXES_FAILURE_LIMIT)

    # then ops from another address, and another user from the same one, still log in
    assert log_in("ops", PASSWORD, address="198.51.100.9")[0].status_code == 302
    other = UserFactory(username="ops2", is_staff=True)
    other.set_password(PASSWORD)
    other.save()
    assert log_in("ops2", PASSWORD)[0].status_code == 302


def test_the_lockout_ends_after_the_cool_off(admin):
    # given a lockout whose attempts are older than the cool-off
    fail(django_settings.AXES_FAILURE_LIMIT)
    assert log_in("ops", PASSWORD)[0].status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - django_settings.AXES_COOLOFF_TIME)

    # when / then
    assert log_in("ops", PASSWORD)[0].status_code == 302


def test_a_success_resets_the_count(admin):
    # given one failure short of the limit, then a success
    fail(django_settings.AXES_FAILURE_LIMIT - 1)
    assert log_in("ops", PASSWORD)[0].status_code == 302

    # when it fails again up to one short of the limit
    codes = fail(django_settings.AXES_FAILURE_LIMIT - 1)

    # then it is not locked out
    assert set(codes) == {200}
    assert log_in("ops", PASSWORD)[0].status_code == 302
