"""Request and response shapes of the site-agent API, wire-compatible with Waldur's SDK.

Input serializers validate; output serializers are read-only and typed field by field so
the generated schema has no untyped objects. Output omits `last_restarted` and
`statistics` when unset: the SDK rejects null there.
"""

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentstats.api.serializers import ObjectUrlField
from agentstats.api.validation import reject_future_time
from marketplace.models import AgentIdentity
from marketplace.names import AgentServiceState, ObservableObjectType
from marketplace.registration.selectors import describe_agent_compatibility


class NonNullOmittingSerializer(serializers.Serializer):
    """Drops the listed keys from the output when their value is null."""

    omit_when_null: tuple[str, ...] = ()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        for key in self.omit_when_null:
            if data.get(key) is None:
                data.pop(key, None)
        return data


# --- output ---------------------------------------------------------------------------


class AgentDependencyOutputSerializer(serializers.Serializer):
    package = serializers.CharField(help_text="Python distribution name.")
    version = serializers.CharField(help_text="Installed version of the distribution.")


class AgentCompatibilityOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["compatible", "incompatible", "unknown"],
        help_text="Whether the agent's version meets the minimum this service supports.",
    )
    message = serializers.CharField(help_text="Why, in one sentence; empty when compatible.")
    minimum_required = serializers.CharField(
        help_text="Minimum agent version this service supports; empty when none is set."
    )


class NestedAgentProcessorOutputSerializer(NonNullOmittingSerializer):
    omit_when_null = ("last_run",)

    uuid = serializers.UUIDField(help_text="Processor uuid.")
    url = ObjectUrlField("agent-processor-detail", source="*", help_text="Processor URL.")
    name = serializers.CharField(help_text="Processor name, e.g. OfferingOrderProcessor.")
    backend_type = serializers.CharField(help_text="Backend class the processor drives.")
    backend_version = serializers.CharField(help_text="Version of the backend.")
    last_run = serializers.DateTimeField(
        required=False, help_text="When the agent last registered a run of this processor."
    )
    created = serializers.DateTimeField(help_text="When the processor was first registered.")
    modified = serializers.DateTimeField(help_text="When the processor row last changed.")


class AgentProcessorOutputSerializer(NestedAgentProcessorOutputSerializer):
    service = serializers.UUIDField(source="service.uuid", help_text="Service uuid.")
    service_name = serializers.CharField(source="service.name", help_text="Service name.")


class NestedAgentServiceOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Service uuid.")
    url = ObjectUrlField("agent-service-detail", source="*", help_text="Service URL.")
    name = serializers.CharField(help_text="Service name, unique per agent.")
    mode = serializers.CharField(help_text="Agent mode the service runs in.")
    state = serializers.ChoiceField(
        choices=AgentServiceState.choices(), help_text="Active, Idle or Error."
    )
    statistics = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Free-form counters the agent reports (set_statistics).",
    )
    created = serializers.DateTimeField(help_text="When the service was first registered.")
    modified = serializers.DateTimeField(help_text="When the service last changed.")


class AgentServiceOutputSerializer(NestedAgentServiceOutputSerializer):
    identity = serializers.UUIDField(source="identity.uuid", help_text="Agent identity uuid.")
    identity_name = serializers.CharField(source="identity.name", help_text="Agent name.")
    processors = NestedAgentProcessorOutputSerializer(
        many=True, help_text="Processors registered under this service."
    )


class AgentIdentityOutputSerializer(NonNullOmittingSerializer):
    omit_when_null = ("last_restarted",)

    uuid = serializers.UUIDField(help_text="Agent identity uuid.")
    url = ObjectUrlField("agent-identity-detail", source="*", help_text="Agent identity URL.")
    offering = serializers.UUIDField(source="offering.uuid", help_text="Offering uuid.")
    name = serializers.CharField(help_text="Agent name, unique per offering.")
    version = serializers.CharField(help_text="Agent version it reported.")
    dependencies = AgentDependencyOutputSerializer(
        many=True, help_text="Packages the agent reported."
    )
    config_file_path = serializers.CharField(help_text="Path of the agent's config file.")
    config_file_content = serializers.CharField(help_text="Content of the agent's config file.")
    last_restarted = serializers.DateTimeField(
        required=False, help_text="When the agent last (re)started; absent when never reported."
    )
    created_by = serializers.UUIDField(
        source="created_by.uuid", allow_null=True, help_text="uuid of the user who registered it."
    )
    created = serializers.DateTimeField(help_text="When the agent first registered.")
    modified = serializers.DateTimeField(help_text="When the agent last re-registered.")
    services = NestedAgentServiceOutputSerializer(many=True, help_text="Services the agent runs.")
    compatibility = serializers.SerializerMethodField(
        help_text="Whether this agent's version is supported."
    )

    @extend_schema_field(AgentCompatibilityOutputSerializer)
    def get_compatibility(self, identity: AgentIdentity) -> dict[str, str]:
        return describe_agent_compatibility(identity.version)


class ObservableObjectOutputSerializer(serializers.Serializer):
    object_type = serializers.ChoiceField(
        choices=ObservableObjectType.choices(), help_text="Kind of object whose events are sent."
    )


class EventSubscriptionOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Subscription uuid; its hex is the RabbitMQ username.")
    url = ObjectUrlField("event-subscription-detail", source="*", help_text="Subscription URL.")
    user = ObjectUrlField("user-detail", help_text="URL of the owner.")
    user_uuid = serializers.UUIDField(
        source="user.uuid", help_text="Owner uuid; its hex is the RabbitMQ vhost."
    )
    user_username = serializers.CharField(source="user.username", help_text="Owner username.")
    user_full_name = serializers.CharField(source="user.full_name", help_text="Owner full name.")
    agent_identity = serializers.UUIDField(
        source="agent_identity.uuid",
        allow_null=True,
        help_text="uuid of the agent that registered it, if any.",
    )
    description = serializers.CharField(help_text="Free text.")
    observable_objects = ObservableObjectOutputSerializer(
        many=True, help_text="Object types the subscription receives events for."
    )
    source_ip = serializers.IPAddressField(
        allow_null=True, help_text="Address the subscription was registered from."
    )
    created = serializers.DateTimeField(help_text="When the subscription was created.")
    modified = serializers.DateTimeField(help_text="When the subscription last changed.")


class EventSubscriptionQueueOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Queue row uuid.")
    url = ObjectUrlField("event-subscription-queue-detail", source="*", help_text="Queue URL.")
    event_subscription = ObjectUrlField(
        "event-subscription-detail", help_text="URL of the subscription."
    )
    event_subscription_uuid = serializers.CharField(
        source="event_subscription.uuid.hex", help_text="Subscription uuid hex."
    )
    offering_uuid = serializers.CharField(source="offering.uuid.hex", help_text="Offering hex.")
    object_type = serializers.ChoiceField(
        choices=ObservableObjectType.choices(), help_text="Kind of object the queue carries."
    )
    queue_name = serializers.CharField(help_text="RabbitMQ queue name.")
    vhost = serializers.CharField(help_text="RabbitMQ vhost (owner uuid hex).")
    created = serializers.DateTimeField(help_text="When the queue was declared.")


class UserOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="User uuid.")
    url = ObjectUrlField("user-detail", source="*", help_text="User URL.")
    username = serializers.CharField(help_text="Login name.")
    full_name = serializers.CharField(help_text="First and last name.")
    is_staff = serializers.BooleanField(help_text="Staff may read and write everything.")
    is_support = serializers.BooleanField(help_text="Support may read everything.")


# --- input ----------------------------------------------------------------------------


class AgentDependencyInputSerializer(serializers.Serializer):
    """One package; the real agent also sends `entry_point`, which is accepted and dropped."""

    package = serializers.CharField(max_length=255)
    version = serializers.CharField(max_length=100, allow_blank=True)


class AgentIdentityInputSerializer(serializers.Serializer):
    offering = serializers.UUIDField(help_text="uuid of the offering the agent serves.")
    name = serializers.CharField(max_length=255)
    version = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True
    )
    dependencies = AgentDependencyInputSerializer(many=True, required=False, allow_null=True)
    config_file_path = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, allow_null=True
    )
    config_file_content = serializers.CharField(
        max_length=settings.AGENT_CONFIG_MAX_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
    )
    last_restarted = serializers.DateTimeField(
        required=False,
        allow_null=True,
        validators=[reject_future_time],
        help_text="A naive time is taken as UTC; at most AGENT_CLOCK_SKEW_SECONDS ahead.",
    )


class AgentServiceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    mode = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)


class AgentProcessorInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    backend_type = serializers.CharField(max_length=100, allow_blank=True)
    backend_version = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True
    )


class AgentServiceStatisticsInputSerializer(serializers.Serializer):
    statistics = serializers.DictField(child=serializers.JSONField())

    def validate_statistics(self, value: dict[str, Any]) -> dict[str, Any]:
        # NUL and lone surrogates (which jsonb cannot store) are refused by validated_input.
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > settings.AGENT_STATISTICS_MAX_BYTES:
            raise serializers.ValidationError(
                f"Statistics must be at most {settings.AGENT_STATISTICS_MAX_BYTES} bytes of JSON."
            )
        return value


class AgentEventSubscriptionInputSerializer(serializers.Serializer):
    observable_object_type = serializers.ChoiceField(choices=ObservableObjectType.choices())
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class EventSubscriptionQueueInputSerializer(serializers.Serializer):
    offering_uuid = serializers.UUIDField()
    object_type = serializers.ChoiceField(choices=ObservableObjectType.choices())


# --- list filters -----------------------------------------------------------------------


class AgentIdentityListQuerySerializer(serializers.Serializer):
    """The identity list's filters; CharField refuses a NUL character, which PostgreSQL
    cannot compare, so `?name=%00` is a 400 here rather than a database error."""

    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    offering_uuid = serializers.UUIDField(required=False)


class AgentServiceListQuerySerializer(serializers.Serializer):
    identity_uuid = serializers.UUIDField(required=False)
