"""The scheduler fires every registered job whose period is on, at the start of each
wall-clock period (aligned to the epoch, as the claim computes periods), coalescing late
firings and dropping those later than one period."""

from datetime import UTC, datetime, timedelta

from marketplace.jobs import scheduler
from marketplace.jobs.engine import Job
from marketplace.jobs.registry import JOBS
from marketplace.jobs.scheduler import build_scheduler, run_scheduled_job, scheduled_names
from marketplace.models import JobRun


def test_every_registered_job_is_scheduled_with_its_period(settings):
    # given periods of 60 s for the idle marking and 0 (off) for the log prune
    settings.JOB_MARK_IDLE_SERVICES_SECONDS = 60
    settings.JOB_PRUNE_AGENT_LOGS_SECONDS = 0

    # when the scheduler is built
    scheduler = build_scheduler()

    # then every job but the one turned off is scheduled, firing once at start
    expected = [job.name for job in JOBS if job.name != "prune_agent_logs"]
    assert sorted(scheduled_names(scheduler)) == sorted(expected)
    idle = scheduler.get_job("mark_idle_services")
    assert idle.trigger.interval == timedelta(seconds=60)
    assert (idle.coalesce, idle.max_instances, idle.misfire_grace_time) == (True, 1, 60)
    assert idle.next_run_time <= datetime.now(UTC)


def test_the_trigger_fires_at_the_start_of_each_wall_clock_period(settings):
    settings.JOB_MARK_IDLE_SERVICES_SECONDS = 300
    trigger = build_scheduler().get_job("mark_idle_services").trigger
    moment = datetime(2026, 12, 2, 9, 7, 12, tzinfo=UTC)

    fire = trigger.get_next_fire_time(None, moment)

    assert fire == datetime(2026, 12, 2, 9, 10, tzinfo=UTC)


def test_a_scheduler_with_every_job_off_schedules_none(settings):
    for job in JOBS:
        setattr(settings, job.period_setting, 0)

    assert scheduled_names(build_scheduler()) == ["none"]


def test_a_firing_claims_and_runs_the_current_period(db, settings, monkeypatch):
    # given a job of a one-hour period; the worker thread's connection tidying recorded
    # (closing the test's own connection would end its transaction)
    settings.JOB_TEST_SECONDS = 3600
    calls = []
    job = Job("fired", "JOB_TEST_SECONDS", lambda *, now: calls.append(now) or {"n": 1})
    tidied = []
    monkeypatch.setattr(scheduler, "close_old_connections", lambda: tidied.append(1))

    # when it fires twice in the same hour
    run_scheduled_job(job)
    run_scheduled_job(job)

    # then it ran once, and each firing tidied its connection before and after
    assert len(calls) == 1
    assert JobRun.objects.get(job="fired").summary == {"n": 1}
    assert len(tidied) == 4
