"""/metrics says when each registered background job last ran, last succeeded, and
whether its latest finished run was ok: one series per registered job, for alert rules."""

from datetime import UTC, datetime, timedelta

import pytest

from marketplace.jobs.registry import JOB_NAMES
from marketplace.models import JobRun
from marketplace.names import JobOutcome
from tests.kit.broker import mock_broker_snapshot
from tests.kit.metrics import parse_samples, sample

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LAST_RUN = "agentstats_job_last_run_timestamp_seconds"
LAST_SUCCESS = "agentstats_job_last_success_timestamp_seconds"
LAST_OK = "agentstats_job_last_run_ok"


def record_run(job: str, *, minute: int, outcome: JobOutcome) -> datetime:
    started = START + timedelta(minutes=minute)
    JobRun.objects.create(
        job=job,
        period_start=started,
        period_seconds=60,
        started_at=started,
        finished_at=None if outcome == JobOutcome.RUNNING else started + timedelta(seconds=1),
        outcome=outcome,
    )
    return started


@pytest.fixture
def scrape_jobs(scraper, broker, db):
    mock_broker_snapshot(broker, connections=[], queues=[])

    def scrape() -> tuple[str, dict]:
        response = scraper()
        assert response.status_code == 200
        body = response.content.decode()
        return body, parse_samples(body)

    return scrape


def test_each_job_reports_its_last_run_last_success_and_whether_it_was_ok(scrape_jobs):
    # given the idle marking: ok, ok, then failed, then one running now;
    # the log prune: ok once; the reconcile: skipped for the broker only
    record_run("mark_idle_services", minute=0, outcome=JobOutcome.OK)
    last_idle_success = record_run("mark_idle_services", minute=1, outcome=JobOutcome.OK)
    record_run("mark_idle_services", minute=2, outcome=JobOutcome.FAILED)
    last_idle_start = record_run("mark_idle_services", minute=3, outcome=JobOutcome.RUNNING)
    prune = record_run("prune_agent_logs", minute=0, outcome=JobOutcome.OK)
    reconcile = record_run(
        "reconcile_connections", minute=5, outcome=JobOutcome.SKIPPED_BROKER_UNAVAILABLE
    )

    # when /metrics is scraped
    body, samples = scrape_jobs()

    # then each job's series say so; the run in progress does not hide the failure
    assert sample(samples, LAST_RUN, job="mark_idle_services") == last_idle_start.timestamp()
    assert sample(samples, LAST_SUCCESS, job="mark_idle_services") == (
        last_idle_success.timestamp()
    )
    assert sample(samples, LAST_OK, job="mark_idle_services") == 0
    assert sample(samples, LAST_RUN, job="prune_agent_logs") == prune.timestamp()
    assert sample(samples, LAST_SUCCESS, job="prune_agent_logs") == prune.timestamp()
    assert sample(samples, LAST_OK, job="prune_agent_logs") == 1
    assert sample(samples, LAST_RUN, job="reconcile_connections") == reconcile.timestamp()
    assert sample(samples, LAST_SUCCESS, job="reconcile_connections") is None
    assert sample(samples, LAST_OK, job="reconcile_connections") == 0
    for name in (LAST_RUN, LAST_SUCCESS, LAST_OK):
        assert f"# HELP {name} " in body
        assert f"# TYPE {name} gauge" in body


def test_only_registered_jobs_have_series_and_at_most_one_each(scrape_jobs):
    # given runs of every registered job, and rows of a job no longer registered
    for minute, job in enumerate(JOB_NAMES):
        record_run(job, minute=minute, outcome=JobOutcome.OK)
        record_run(job, minute=minute + 10, outcome=JobOutcome.OK)
    record_run("retired_job", minute=0, outcome=JobOutcome.OK)

    # when
    _, samples = scrape_jobs()

    # then each family has exactly one series per registered job
    for name in (LAST_RUN, LAST_SUCCESS, LAST_OK):
        jobs = sorted(dict(labels)["job"] for (series, labels) in samples if series == name)
        assert jobs == sorted(JOB_NAMES)


def test_jobs_that_never_ran_have_no_series(scrape_jobs):
    _, samples = scrape_jobs()

    assert not [series for (series, _) in samples if series.startswith("agentstats_job_")]
