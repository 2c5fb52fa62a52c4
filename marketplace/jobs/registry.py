"""Every background job: add one by appending a `Job(name, period_setting, function)`.

A job's function takes `now` (keyword) and returns a summary of counts, which its run
records. The period is a setting (seconds) of its own, read from the environment in
agentstats/settings.py.
"""

from datetime import datetime, timedelta

from django.conf import settings

from marketplace.agent_logs.services import prune_agent_logs
from marketplace.envelope.observer import reconcile_connections
from marketplace.jobs.engine import Job
from marketplace.jobs.idle import mark_idle_services
from marketplace.models import JobRun
from marketplace.registration.housekeeping import run_reconcile_broker
from marketplace.registration.revocation import run_revoke_broker_credentials


def run_mark_idle_services(*, now: datetime) -> dict[str, int]:
    return {"marked_idle": mark_idle_services(now=now)}


def run_prune_agent_logs(*, now: datetime) -> dict[str, int]:
    return {"deleted": prune_agent_logs(now=now)}


def run_reconcile_connections(*, now: datetime) -> dict[str, int]:
    return {"broker_connections": reconcile_connections()}


class RevocationIncomplete(RuntimeError):
    """The sweep could not revoke every credential it should have (the broker failed)."""


def run_revocation_sweep(*, now: datetime) -> dict[str, int]:
    """The revocation sweep, failing its run when a credential stayed unrevoked: the sweep
    counts broker failures and goes on, but a run that left access in place is not `ok`
    (its /metrics series and the job-failing alert must say so)."""
    counts = run_revoke_broker_credentials(now=now)
    if counts.get("failed"):
        raise RevocationIncomplete(f"{counts['failed']} credential(s) left unrevoked: {counts}")
    return counts


def run_prune_job_runs(*, now: datetime) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.JOB_RUN_RETENTION_DAYS)
    return {"deleted": JobRun.objects.filter(started_at__lt=cutoff).delete()[0]}


JOBS: list[Job] = [
    Job("mark_idle_services", "JOB_MARK_IDLE_SERVICES_SECONDS", run_mark_idle_services),
    Job("prune_agent_logs", "JOB_PRUNE_AGENT_LOGS_SECONDS", run_prune_agent_logs),
    Job("reconcile_connections", "JOB_RECONCILE_CONNECTIONS_SECONDS", run_reconcile_connections),
    Job("prune_job_runs", "JOB_PRUNE_JOB_RUNS_SECONDS", run_prune_job_runs),
    Job("reconcile_broker", "JOB_RECONCILE_BROKER_SECONDS", run_reconcile_broker),
    Job(
        "revoke_broker_credentials",
        "JOB_REVOKE_BROKER_CREDENTIALS_SECONDS",
        run_revocation_sweep,
    ),
]

# One /metrics series per registered job, whatever rows the table holds.
JOB_NAMES: tuple[str, ...] = tuple(job.name for job in JOBS)
