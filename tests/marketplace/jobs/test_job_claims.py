"""A job runs once per period: the INSERT of its (job, period_start) row is the claim, the
loser skips, and a claimed period is never run again (also by a restarted process)."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from marketplace.jobs.engine import Job, claim_period, period_start_of, run_job
from marketplace.models import JobRun
from marketplace.names import JobOutcome
from rmq.exceptions import BrokerResponseError, BrokerUnavailable

MOMENT = datetime(2026, 12, 2, 9, 0, 59, 500000, tzinfo=UTC)


class CountingJob:
    """A job function that counts its calls and answers a summary."""

    def __init__(self, *, error: Exception | None = None) -> None:
        self.calls: list[datetime] = []
        self.error = error

    def __call__(self, *, now: datetime) -> dict[str, int]:
        self.calls.append(now)
        if self.error is not None:
            raise self.error
        return {"touched": 3}


@pytest.fixture
def job(settings):
    settings.JOB_TEST_SECONDS = 60
    function = CountingJob()
    return Job("test_job", "JOB_TEST_SECONDS", function), function


def test_periods_are_wall_clock_periods_aligned_to_the_epoch():
    assert period_start_of(MOMENT, period_seconds=60) == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert period_start_of(MOMENT, period_seconds=3600) == datetime(2026, 12, 2, 9, tzinfo=UTC)
    assert period_start_of(MOMENT, period_seconds=7) == datetime.fromtimestamp(
        int(MOMENT.timestamp()) // 7 * 7, tz=UTC
    )


def test_the_first_claim_of_a_period_wins_and_the_next_loses(db, job):
    # given a job with a one-minute period
    definition, _ = job

    # when two schedulers claim it in the same minute, then one in the next minute
    first = claim_period(definition, now=MOMENT)
    second = claim_period(definition, now=MOMENT.replace(second=1))
    next_period = claim_period(definition, now=MOMENT.replace(minute=1))

    # then the first and the next minute's win, the second loses
    assert first is not None and next_period is not None
    assert second is None
    assert sorted(JobRun.objects.values_list("period_start", flat=True)) == [
        datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 1, tzinfo=UTC),
    ]


def test_the_database_refuses_a_second_row_for_one_job_and_period(db, job):
    definition, _ = job
    claim_period(definition, now=MOMENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(
            job="test_job",
            period_start=period_start_of(MOMENT, period_seconds=60),
            period_seconds=60,
            started_at=MOMENT,
        )


def test_a_run_records_its_outcome_summary_and_times(db, job, fake_clock):
    # given
    definition, function = job

    # when the job runs
    run = run_job(definition, now=MOMENT)

    # then it ran once and its row says so
    assert run is not None
    run.refresh_from_db()
    assert function.calls == [MOMENT]
    assert (run.outcome, run.summary, run.error) == (JobOutcome.OK, {"touched": 3}, "")
    assert run.started_at == MOMENT
    assert run.finished_at == fake_clock.now()
    assert run.runner


def test_a_claimed_period_is_not_run_again_by_another_or_a_restarted_process(db, job):
    # given a period already run (by this process before a restart, or by a replica)
    definition, function = job
    run_job(definition, now=MOMENT)

    # when the job fires again in that period
    again = run_job(definition, now=MOMENT.replace(second=58))

    # then it is skipped: one call, one row
    assert again is None
    assert len(function.calls) == 1
    assert JobRun.objects.count() == 1


def test_a_failed_run_is_recorded_without_credentials_and_raised_again(db, settings):
    # given a job whose error message carries the broker URL with its password and a token
    settings.JOB_TEST_SECONDS = 60
    settings.RABBITMQ_PASSWORD = "s3cret-broker-pass"
    token = "0123456789abcdef0123456789abcdef01234567"
    function = CountingJob(
        error=RuntimeError(f"cannot reach amqp://agent:s3cret-broker-pass@rabbit/ with {token}")
    )
    definition = Job("failing_job", "JOB_TEST_SECONDS", function)

    # when it runs
    with pytest.raises(RuntimeError):
        run_job(definition, now=MOMENT)

    # then the run is failed, with the error minus the credentials
    run = JobRun.objects.get(job="failing_job")
    assert run.outcome == JobOutcome.FAILED
    assert run.error.startswith("RuntimeError: cannot reach amqp://agent:***@rabbit/")
    assert "s3cret" not in run.error and token not in run.error
    assert run.finished_at is not None


def test_a_broker_outage_skips_the_run(db, settings):
    # given a job that needs the broker, which is down
    settings.JOB_TEST_SECONDS = 60
    function = CountingJob(error=BrokerUnavailable("connection refused"))
    definition = Job("broker_job", "JOB_TEST_SECONDS", function)

    # when it runs
    run = run_job(definition, now=MOMENT)

    # then the period is used up as skipped, with the reason
    assert run is not None
    run.refresh_from_db()
    assert run.outcome == JobOutcome.SKIPPED_BROKER_UNAVAILABLE
    assert "connection refused" in run.error


def test_a_broker_answer_it_cannot_use_is_a_failure(db, settings):
    settings.JOB_TEST_SECONDS = 60
    definition = Job("broker_job", "JOB_TEST_SECONDS", CountingJob(error=BrokerResponseError("?")))

    with pytest.raises(BrokerResponseError):
        run_job(definition, now=MOMENT)

    assert JobRun.objects.get().outcome == JobOutcome.FAILED


def test_a_job_with_period_zero_is_off(db, job, settings):
    # given a job turned off
    definition, function = job
    settings.JOB_TEST_SECONDS = 0

    # when it fires
    run = run_job(definition, now=MOMENT)

    # then nothing ran and nothing was claimed
    assert run is None
    assert function.calls == []
    assert not JobRun.objects.exists()
