"""Request and response shapes of the agent log API, as Waldur's SDK 8.1 models them
(`SiteAgentLogCreateRequest` in, `SiteAgentLog` out)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentstats.api.serializers import ObjectUrlField
from marketplace.models import AgentLog
from marketplace.names import LogLevel

# Log lines older than this are a broken clock, not a log.
EARLIEST_LOG_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# "2026-01-01T00:00:00 00:00": a query string's unescaped "+" arrives as a space.
SPACE_FOR_PLUS_OFFSET = re.compile(r" (?=\d\d:?\d\d$)")


def epoch_seconds_to_datetime(seconds: float) -> datetime | None:
    """An aware UTC time from Unix epoch seconds, or None when out of any calendar."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


class LogTimestampField(serializers.FloatField):
    """Unix epoch seconds (a float, as Python's logging records a line) -> an aware UTC
    time; finite, from 2000 on, and at most AGENT_LOG_MAX_FUTURE_SECONDS ahead of now."""

    default_error_messages = {
        "out_of_range": "Must be between {earliest} and this server's clock plus {skew} s.",
    }

    def to_internal_value(self, data: Any) -> datetime:  # type: ignore[override]
        moment = epoch_seconds_to_datetime(super().to_internal_value(data))
        latest = timezone.now() + timedelta(seconds=settings.AGENT_LOG_MAX_FUTURE_SECONDS)
        if moment is None or not EARLIEST_LOG_TIME <= moment <= latest:
            self.fail(
                "out_of_range",
                earliest=EARLIEST_LOG_TIME.isoformat(),
                skew=settings.AGENT_LOG_MAX_FUTURE_SECONDS,
            )
        return moment


class LogMessageField(serializers.CharField):
    """Any text, even empty; NUL characters and overlong messages are not refused (the
    service replaces and truncates them: one odd line must not cost the whole batch)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)
        self.validators = []


class AgentLogEntryInputSerializer(serializers.Serializer):
    agent_identity_uuid = serializers.UUIDField(
        help_text="uuid of the agent (32 hex or dashed); the caller must manage it."
    )
    timestamp = LogTimestampField(help_text="When the line was logged: Unix epoch seconds.")
    level = serializers.ChoiceField(choices=LogLevel.values(), help_text="Python's level name.")
    message = LogMessageField(
        help_text="The line; longer than AGENT_LOG_MESSAGE_MAX_LENGTH characters is truncated."
    )
    module = serializers.CharField(
        max_length=255, allow_blank=True, trim_whitespace=False, help_text="Logger name."
    )


class AgentLogBatchInputSerializer(serializers.ListSerializer):
    """What the agent posts: a JSON array of 1 to AGENT_LOG_BATCH_MAX entries."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            child=AgentLogEntryInputSerializer(),
            allow_empty=False,
            max_length=settings.AGENT_LOG_BATCH_MAX,
            **kwargs,
        )


class AgentLogOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Log line uuid.")
    offering = ObjectUrlField(
        "provider-offering-detail", source="identity.offering", help_text="URL of the offering."
    )
    offering_uuid = serializers.UUIDField(source="identity.offering.uuid", help_text="Offering.")
    agent_identity_uuid = serializers.UUIDField(source="identity.uuid", help_text="The agent.")
    timestamp = serializers.SerializerMethodField(
        help_text="When the line was logged: Unix epoch seconds."
    )
    level = serializers.ChoiceField(choices=LogLevel.values(), help_text="Python's level name.")
    message = serializers.CharField(help_text="The line, as stored.")
    module = serializers.CharField(help_text="Logger name.")
    created = serializers.DateTimeField(help_text="When this service received it.")

    def get_timestamp(self, log: AgentLog) -> float:
        return log.timestamp.timestamp()


@extend_schema_field(OpenApiTypes.STR)
class InstantField(serializers.Field):
    """A moment as Unix epoch seconds or an ISO 8601 time (naive means UTC)."""

    default_error_messages = {"invalid": "Give Unix epoch seconds or an ISO 8601 time."}

    def to_internal_value(self, data: Any) -> datetime:
        text = str(data).strip()
        try:
            moment = epoch_seconds_to_datetime(float(text))
        except ValueError:
            iso = serializers.DateTimeField(default_timezone=UTC)
            try:
                return iso.to_internal_value(SPACE_FOR_PLUS_OFFSET.sub("+", text))
            except serializers.ValidationError:
                self.fail("invalid")
        if moment is None:
            self.fail("invalid")
        return moment

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class LogLevelListField(serializers.ListField):
    """One or more levels, repeated or comma-separated, in any letter case."""

    child = serializers.ChoiceField(choices=LogLevel.values())

    def to_internal_value(self, data: Any) -> list[str]:
        values = [data] if isinstance(data, str) else data
        if not isinstance(values, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        names = [name.strip().upper() for value in values for name in str(value).split(",")]
        return super().to_internal_value([name for name in names if name])


class AgentLogListQuerySerializer(serializers.Serializer):
    agent_identity_uuid = serializers.UUIDField(required=False, help_text="Only this agent.")
    offering_uuid = serializers.UUIDField(required=False, help_text="Only this offering's.")
    level = LogLevelListField(required=False, help_text="Only these levels.")
    since = InstantField(required=False, help_text="Logged at or after (epoch or ISO).")
    until = InstantField(required=False, help_text="Logged at or before (epoch or ISO).")
    timestamp_from = InstantField(required=False, help_text="Upstream's name for `since`.")
    timestamp_to = InstantField(required=False, help_text="Upstream's name for `until`.")
