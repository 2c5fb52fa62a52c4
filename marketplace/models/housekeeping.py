"""What the broker reconcile remembers between runs: broker objects no row explains."""

from django.db import models

from marketplace.names import BrokerObjectKind


class BrokerOrphan(models.Model):
    """A queue, user or vhost of the service's own naming that no row explained when a
    reconcile first saw it.

    Registration declares on the broker before its transaction commits, so an object is
    removed only once it has stayed unexplained for BROKER_ORPHAN_GRACE_SECONDS; a row
    that explains it again makes the reconcile forget it. `vhost` is empty for users.
    """

    kind = models.CharField(max_length=10, choices=BrokerObjectKind.choices())
    vhost = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255)
    first_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["first_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "vhost", "name"], name="broker_orphan_unique_kind_vhost_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.vhost}/{self.name}" if self.vhost else f"{self.kind} {self.name}"
