"""The registered jobs other than mark_idle_services, run through the engine: the log
prune, the periodic reconcile (the observer's, moved here so replicas do not all do it)
and the JobRun prune. Each records a summary of counts."""

from datetime import timedelta

import pytest
import requests
import responses

from marketplace.jobs.engine import run_job
from marketplace.jobs.registry import JOB_NAMES, JOBS
from marketplace.models import AgentBrokerConnection, AgentLog, JobRun
from marketplace.names import JobOutcome
from tests.factories import AgentLogFactory, EventSubscriptionFactory
from tests.kit.broker import MANAGEMENT, broker_connection_of, mock_broker_snapshot


def job_named(name: str):
    return next(job for job in JOBS if job.name == name)


def test_every_registered_job_has_a_unique_name_and_a_period_setting(settings):
    assert len(set(JOB_NAMES)) == len(JOBS)
    for job in JOBS:
        assert getattr(settings, job.period_setting) > 0, job.period_setting
    assert set(JOB_NAMES) >= {
        "mark_idle_services",
        "prune_agent_logs",
        "reconcile_connections",
        "prune_job_runs",
        "reconcile_broker",
        "revoke_broker_credentials",
    }


def test_the_log_prune_job_deletes_expired_lines(identity, settings, fake_clock):
    # given a 30-day retention, one line received 31 days ago and one today
    settings.AGENT_LOG_RETENTION_DAYS = 30
    expired = AgentLogFactory(identity=identity)
    AgentLog.objects.filter(pk=expired.pk).update(created=fake_clock.ago(31 * 86400))
    AgentLogFactory(identity=identity)

    # when the job runs
    run = run_job(job_named("prune_agent_logs"), now=fake_clock.now())

    # then the expired line is gone, and the run says how many went
    assert run is not None
    assert JobRun.objects.get(pk=run.pk).summary == {"deleted": 1}
    assert not AgentLog.objects.filter(pk=expired.pk).exists()
    assert AgentLog.objects.count() == 1


def test_the_job_run_prune_keeps_a_week_of_runs(db, settings, fake_clock):
    # given runs from 8 days ago and from yesterday
    settings.JOB_RUN_RETENTION_DAYS = 7
    for days in (8, 1):
        started = fake_clock.ago(days * 86400)
        JobRun.objects.create(
            job="mark_idle_services",
            period_start=started,
            period_seconds=60,
            started_at=started,
            outcome=JobOutcome.OK,
        )

    # when the prune runs
    run = run_job(job_named("prune_job_runs"), now=fake_clock.now())

    # then the old run is gone; yesterday's and its own row stay
    assert run is not None
    assert JobRun.objects.get(pk=run.pk).summary == {"deleted": 1}
    assert sorted(JobRun.objects.values_list("job", flat=True)) == [
        "mark_idle_services",
        "prune_job_runs",
    ]


def test_the_reconcile_job_records_the_connections_the_broker_lists(db, broker, fake_clock):
    # given an agent's subscription connected on the broker, unknown to the database
    subscription = EventSubscriptionFactory()
    mock_broker_snapshot(broker, connections=[broker_connection_of(subscription)])

    # when the reconcile job runs
    run = run_job(job_named("reconcile_connections"), now=fake_clock.now())

    # then the connection is recorded, and the run counts what the broker listed
    assert run is not None
    run.refresh_from_db()
    assert (run.outcome, run.summary) == (JobOutcome.OK, {"broker_connections": 1})
    assert AgentBrokerConnection.objects.filter(identity=subscription.agent_identity).exists()


@pytest.mark.parametrize("error", [requests.ConnectionError("refused"), requests.Timeout("slow")])
def test_the_reconcile_job_is_skipped_while_the_broker_is_unreachable(
    db, broker, fake_clock, error
):
    # given a broker that cannot be reached
    broker.add(responses.GET, f"{MANAGEMENT}/api/connections", body=error)
    broker.add(responses.GET, f"{MANAGEMENT}/api/queues", body=error)
    broker.add(responses.GET, f"{MANAGEMENT}/api/consumers", body=error)

    # when the reconcile job runs
    run = run_job(job_named("reconcile_connections"), now=fake_clock.now())

    # then the period is recorded as skipped for the broker, and the next period runs again
    assert run is not None
    run.refresh_from_db()
    assert run.outcome == JobOutcome.SKIPPED_BROKER_UNAVAILABLE
    assert run.error
    later = fake_clock.now() + timedelta(seconds=120)
    assert run_job(job_named("reconcile_connections"), now=later) is not None
