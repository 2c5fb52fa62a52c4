"""The runs of background jobs: one row per job and period, the claim that makes a run
happen once however many scheduler processes are running."""

from django.db import models

from marketplace.names import JobOutcome


class JobRun(models.Model):
    """One job's run for one period; inserting the row is claiming the period.

    `period_start` is the wall-clock period the run belongs to, aligned to the epoch
    (floor(now / period) * period): every scheduler computes the same one, and the unique
    constraint lets exactly one INSERT win it.
    """

    job = models.CharField(max_length=100)
    period_start = models.DateTimeField()
    period_seconds = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # The default is the plain value, so a migration never has to import the enum.
    outcome = models.CharField(
        max_length=40, choices=JobOutcome.choices(), default=JobOutcome.RUNNING.value
    )
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    # host:pid of the scheduler process that won the claim.
    runner = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-period_start", "job"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "period_start"], name="job_run_unique_job_period"
            )
        ]
        indexes = [models.Index(fields=["job", "-started_at"], name="job_run_latest")]

    def __str__(self) -> str:
        return f"{self.job} @ {self.period_start:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float | None:
        """How long the run took, once it finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
