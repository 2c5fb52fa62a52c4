"""Fire every registered job once per period in a background thread (APScheduler).

APScheduler does the timing only: each job's interval trigger is aligned to the epoch
(it fires at the start of each wall-clock period, and once at start for the current
one), late firings are coalesced into one, and a firing later than one period is
dropped. Which process runs a period is decided by the database claim
(`engine.run_job`), so any number of these schedulers can run side by side.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from django.db import close_old_connections

from marketplace.jobs.engine import Job, run_job
from marketplace.jobs.registry import JOBS

logger = logging.getLogger(__name__)

EPOCH = datetime.fromtimestamp(0, tz=UTC)


def build_scheduler(jobs: Sequence[Job] = tuple(JOBS)) -> BackgroundScheduler:
    """A stopped scheduler with every job whose period is on (> 0)."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for job in jobs:
        period = job.period_seconds
        if period <= 0:
            logger.info("job %s is off (%s=0)", job.name, job.period_setting)
            continue
        scheduler.add_job(
            run_scheduled_job,
            trigger=IntervalTrigger(seconds=period, start_date=EPOCH, timezone=UTC),
            args=[job],
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=period,
            next_run_time=datetime.now(UTC),
        )
    return scheduler


def run_scheduled_job(job: Job) -> None:
    """One firing, in a worker thread: its own database connection, closed when stale."""
    close_old_connections()
    try:
        run_job(job)
    finally:
        close_old_connections()


def scheduled_names(scheduler: BackgroundScheduler) -> list[str]:
    """The names of the jobs a scheduler fires ("none" when every job is off)."""
    return [job.name for job in scheduler.get_jobs()] or ["none"]
