"""The log lines agents ship (waldur-site-agent's log shipping)."""

import uuid

from django.db import models

from marketplace.models.agents import AgentIdentity
from marketplace.names import LogLevel


class AgentLog(models.Model):
    """One log line an agent shipped: when it was logged, at what level, by which module."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    identity = models.ForeignKey(AgentIdentity, on_delete=models.CASCADE, related_name="logs")
    timestamp = models.DateTimeField()
    level = models.CharField(max_length=10, choices=LogLevel.choices())
    message = models.TextField()
    module = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["identity", "-timestamp"], name="agent_log_timeline"),
            models.Index(fields=["identity", "level", "-timestamp"], name="agent_log_by_level"),
            models.Index(fields=["created"], name="agent_log_retention"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.module}"
