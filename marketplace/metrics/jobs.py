"""The background jobs' last runs, for alerting: one series per registered job.

The registered job names come from the caller (the URL conf passes the job registry's),
so a row of a job that is no longer registered never adds a series. A job that has not
run yet has no series, rather than a zero that reads as "last ran in 1970".
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from marketplace.models import JobRun
from marketplace.names import JobOutcome


@dataclass(frozen=True, slots=True)
class JobLastRuns:
    """When a job's latest claimed run and latest successful run started, and whether its
    latest finished run succeeded (None when none has finished)."""

    job: str
    last_run_at: datetime | None
    last_success_at: datetime | None
    is_last_finished_ok: bool | None


def list_job_last_runs(job_names: Sequence[str]) -> list[JobLastRuns]:
    """The last runs of each named job, in one query whatever the number of jobs.

    The latest finished run succeeded when it is the latest successful one (a job's runs
    start at distinct moments: one per period).
    """
    latest = {
        row["job"]: row
        for row in JobRun.objects.filter(job__in=job_names)
        .values("job")
        .annotate(
            last_run_at=Max("started_at"),
            last_success_at=Max("started_at", filter=Q(outcome=JobOutcome.OK)),
            last_finished_at=Max("started_at", filter=~Q(outcome=JobOutcome.RUNNING)),
        )
        .order_by()
    }
    answers = []
    for name in job_names:
        row = latest.get(name, {})
        last_finished_at = row.get("last_finished_at")
        answers.append(
            JobLastRuns(
                job=name,
                last_run_at=row.get("last_run_at"),
                last_success_at=row.get("last_success_at"),
                is_last_finished_ok=None
                if last_finished_at is None
                else last_finished_at == row.get("last_success_at"),
            )
        )
    return answers


class JobRunCollector:
    """agentstats_job_last_run_timestamp_seconds, ..._last_success_timestamp_seconds and
    agentstats_job_last_run_ok, labelled by job."""

    def __init__(self, job_names: Sequence[str]) -> None:
        self.job_names = tuple(job_names)

    def collect(self) -> Iterator[Metric]:
        """Yield the three families; a job without such a run has no series in them, and
        a family without series is left out."""
        last_run = GaugeMetricFamily(
            "agentstats_job_last_run_timestamp_seconds",
            "When the job's latest claimed run started (Unix time).",
            labels=["job"],
        )
        last_success = GaugeMetricFamily(
            "agentstats_job_last_success_timestamp_seconds",
            "When the job's latest successful run started (Unix time).",
            labels=["job"],
        )
        last_ok = GaugeMetricFamily(
            "agentstats_job_last_run_ok",
            "1 when the job's latest finished run succeeded, 0 when it failed or was skipped.",
            labels=["job"],
        )
        for runs in list_job_last_runs(self.job_names):
            if runs.last_run_at is not None:
                last_run.add_metric([runs.job], runs.last_run_at.timestamp())
            if runs.last_success_at is not None:
                last_success.add_metric([runs.job], runs.last_success_at.timestamp())
            if runs.is_last_finished_ok is not None:
                last_ok.add_metric([runs.job], 1 if runs.is_last_finished_ok else 0)
        for family in (last_run, last_success, last_ok):
            if family.samples:
                yield family
