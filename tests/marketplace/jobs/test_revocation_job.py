"""The revocation sweep as a job: a run that left a credential unrevoked is `failed`, so
its /metrics series and the job-failing alert say access is still in place."""

import pytest
import requests
import responses

from marketplace.jobs.engine import run_job
from marketplace.jobs.registry import JOBS, RevocationIncomplete
from marketplace.models import EventSubscription, JobRun
from marketplace.names import JobOutcome
from marketplace.registration.revocation_signals import (
    connect_revocation_signals,
    disconnect_revocation_signals,
)
from tests.kit.broker import accept_teardown, management_url
from tests.kit.revocation import provisioned_subscription

SWEEP = next(job for job in JOBS if job.name == "revoke_broker_credentials")


@pytest.fixture(autouse=True)
def _sweep_alone():
    """Only the job acts (the signals' immediate path would revoke at once)."""
    disconnect_revocation_signals()
    yield
    connect_revocation_signals()


def test_a_sweep_the_broker_refuses_is_a_failed_run(identity, owner, customer, broker, fake_clock):
    # given an owner removed from the customer, and a broker that cannot be reached
    provisioned_subscription(identity, owner)
    customer.owners.remove(owner)
    broker.add(responses.DELETE, management_url("users"), body=requests.ConnectionError("refused"))

    # when the job runs
    with pytest.raises(RevocationIncomplete):
        run_job(SWEEP, now=fake_clock.now())

    # then the run is recorded as failed and the row (and its access) is still there
    run = JobRun.objects.get(job=SWEEP.name)
    assert run.outcome == JobOutcome.FAILED
    assert "1 credential(s) left unrevoked" in run.error
    assert EventSubscription.objects.count() == 1


def test_a_sweep_that_revokes_everything_is_an_ok_run(
    identity, owner, customer, broker, fake_clock
):
    # given an owner removed from the customer, and a broker that obeys
    provisioned_subscription(identity, owner)
    customer.owners.remove(owner)
    accept_teardown(broker)

    # when the job runs
    run = run_job(SWEEP, now=fake_clock.now())

    # then
    assert run is not None
    run.refresh_from_db()
    assert (run.outcome, run.summary["deleted"]) == (JobOutcome.OK, 1)
    assert not EventSubscription.objects.exists()
