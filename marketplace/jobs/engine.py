"""Run a job once per period: claim the period with an INSERT, run, record the outcome.

Every scheduler process computes the same period for the same moment (wall-clock periods
aligned to the epoch), so the unique (job, period_start) constraint lets exactly one
INSERT win; the others skip. A claimed period is never run again, also after a restart:
a run whose process died stays `running` (at most once, never twice).
"""

import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from agentstats.errors import Unavailable
from marketplace.models import JobRun
from marketplace.names import JobOutcome
from rmq.clock import current_clock
from rmq.exceptions import BrokerUnavailable

logger = logging.getLogger(__name__)

ERROR_MAX_LENGTH = 1000
# host:pid, recorded on the runs this process claims.
RUNNER = f"{socket.gethostname()}:{os.getpid()}"
# Credentials in URLs (scheme://user:password@host) and DRF API tokens (40 hex digits).
_URL_PASSWORD = re.compile(r"(//[^/:@\s]*:)[^@\s/]+@")
_API_TOKEN = re.compile(r"\b[0-9a-fA-F]{40}\b")


@dataclass(frozen=True)
class Job:
    """A background job: its name, the setting holding its period (seconds; 0 turns it
    off) and `function(*, now) -> {count name: count}`, the summary of what it did."""

    name: str
    period_setting: str
    function: Callable[..., Mapping[str, int]]

    @property
    def period_seconds(self) -> int:
        return int(getattr(settings, self.period_setting))


def period_start_of(moment: datetime, *, period_seconds: int) -> datetime:
    """The start of the wall-clock period holding `moment`: floor(t / period) * period."""
    seconds = int(moment.timestamp()) // period_seconds * period_seconds
    return datetime.fromtimestamp(seconds, tz=UTC)


def claim_period(job: Job, *, now: datetime) -> JobRun | None:
    """Insert the run of `job` for the period holding `now`; None if it is taken."""
    period = job.period_seconds
    try:
        with transaction.atomic():
            return JobRun.objects.create(
                job=job.name,
                period_start=period_start_of(now, period_seconds=period),
                period_seconds=period,
                started_at=now,
                runner=RUNNER,
            )
    except IntegrityError:
        return None


def run_job(job: Job, *, now: datetime | None = None) -> JobRun | None:
    """Claim the current period and run the job in it; None when it is off or another
    process claimed the period first.

    A broker outage ends the run as skipped; any other failure is recorded as failed and
    raised again, so the scheduler logs it with its traceback.
    """
    if job.period_seconds <= 0:
        return None
    run = claim_period(job, now=now or current_clock().now())
    if run is None:
        return None
    try:
        summary = job.function(now=run.started_at)
    except (BrokerUnavailable, Unavailable) as exc:
        _finish(run, outcome=JobOutcome.SKIPPED_BROKER_UNAVAILABLE, error=describe_error(exc))
        logger.warning("job %s skipped for %s: %s", job.name, run.period_start, run.error)
        return run
    except Exception as exc:
        _finish(run, outcome=JobOutcome.FAILED, error=describe_error(exc))
        raise
    _finish(run, outcome=JobOutcome.OK, summary={str(k): int(v) for k, v in summary.items()})
    logger.info("job %s ran for %s: %s", job.name, run.period_start, run.summary)
    return run


def describe_error(exc: BaseException) -> str:
    """The error as recorded: its type and message, credentials replaced by ***."""
    text = f"{type(exc).__name__}: {exc}"
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _API_TOKEN.sub("***", text)
    for secret in _configured_secrets():
        text = text.replace(secret, "***")
    return text[:ERROR_MAX_LENGTH]


def _configured_secrets() -> list[str]:
    candidates = [
        settings.RABBITMQ_PASSWORD,
        *(urlsplit(url).password or "" for url in settings.RABBITMQ_AMQP_URLS),
        str(settings.DATABASES["default"].get("PASSWORD") or ""),
        settings.SECRET_KEY,
        settings.METRICS_TOKEN,
    ]
    return [secret for secret in candidates if secret]


def _finish(
    run: JobRun,
    *,
    outcome: JobOutcome,
    summary: dict[str, int] | None = None,
    error: str = "",
) -> None:
    run.finished_at = current_clock().now()
    run.outcome = outcome
    run.summary = summary or {}
    run.error = error
    run.save(update_fields=["finished_at", "outcome", "summary", "error"])
