"""Response shapes of the agent's reads, as Waldur's SDK 8.1 models them (`Version`,
`UserMe`, `ProviderOfferingDetails`, `ServiceProvider`), with the keys this service can
fill truthfully. Every key the SDK knows is optional there; those it requires are here.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentstats.api.serializers import ObjectUrlField
from agentstats.models import User
from marketplace.platform.selectors import list_user_permissions

# What an offering reports as its state: this service lists only offerings in service.
ACTIVE_OFFERING_STATE = "Active"
BILLING_TYPES = ["few", "fixed", "limit", "one", "usage"]


def parse_requested_fields(values: list[str]) -> frozenset[str]:
    """The keys a repeated (or comma-separated) `?field=` asks for; empty for all."""
    return frozenset(name.strip() for value in values for name in value.split(",") if name)


class FieldNarrowingSerializer(serializers.Serializer):
    """Answers only the keys named in the context's `requested_fields` (upstream's repeated
    `?field=`): names it does not know select nothing, and no name selects every key."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        requested = self.context.get("requested_fields")
        if not requested:
            return fields
        return {name: field for name, field in fields.items() if name in requested}


class FieldNarrowingSchema(OpenApiSerializerExtension):
    """In the schema, no key of a narrowing serializer is required: `?field=` may drop any
    (upstream's schema, hence its SDK's models, marks none required either)."""

    target_class = FieldNarrowingSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema.pop("required", None)
        return schema


class VersionOutputSerializer(serializers.Serializer):
    version = serializers.CharField(help_text="This service's installed version.")


class UserPermissionOutputSerializer(serializers.Serializer):
    role_name = serializers.CharField(help_text='The role: "CUSTOMER.OWNER".')
    scope_type = serializers.CharField(help_text='What the role is held on: "customer".')
    scope_uuid = serializers.UUIDField(help_text="uuid of the customer.")
    scope_name = serializers.CharField(help_text="Name of the customer.")
    customer_uuid = serializers.UUIDField(help_text="uuid of the customer.")
    customer_name = serializers.CharField(help_text="Name of the customer.")


class UserMeOutputSerializer(FieldNarrowingSerializer):
    """The caller (upstream's UserMe, the keys this service knows)."""

    url = ObjectUrlField("user-detail", source="*", help_text="The user's URL.")
    uuid = serializers.UUIDField(help_text="User uuid.")
    username = serializers.CharField(help_text="Login name.")
    full_name = serializers.CharField(help_text="First and last name.")
    first_name = serializers.CharField(help_text="First name.")
    last_name = serializers.CharField(help_text="Last name.")
    email = serializers.CharField(help_text="E-mail address; empty when unknown.")
    is_staff = serializers.BooleanField(help_text="Staff read and write everything.")
    is_support = serializers.BooleanField(help_text="Support read everything.")
    is_active = serializers.BooleanField(help_text="Whether the account may sign in.")
    date_joined = serializers.DateTimeField(help_text="When the account was created.")
    permissions = serializers.SerializerMethodField(
        help_text="The roles the user holds: the owner role of each customer it owns."
    )

    @extend_schema_field(UserPermissionOutputSerializer(many=True))
    def get_permissions(self, user: User) -> list[dict[str, Any]]:
        return list(UserPermissionOutputSerializer(list_user_permissions(user), many=True).data)


class OfferingComponentOutputSerializer(serializers.Serializer):
    """Documents the known keys of a stored component; every stored key is answered."""

    type = serializers.CharField(required=False, help_text="Internal name, e.g. cpu.")
    name = serializers.CharField(required=False, help_text="Display name.")
    description = serializers.CharField(required=False, help_text="Free text.")
    billing_type = serializers.ChoiceField(
        choices=BILLING_TYPES, required=False, help_text="How the component is billed."
    )
    measured_unit = serializers.CharField(required=False, help_text="Unit, e.g. GB.")
    unit_factor = serializers.IntegerField(
        required=False, help_text="Backend units per measured unit."
    )
    limit_period = serializers.CharField(
        required=False, allow_null=True, help_text="Period a limit applies to."
    )
    limit_amount = serializers.FloatField(
        required=False, allow_null=True, help_text="Default limit."
    )
    article_code = serializers.CharField(required=False, help_text="Accounting article code.")


class OfferingPartitionOutputSerializer(serializers.Serializer):
    """Documents the known keys of a stored partition; every stored key is answered."""

    partition_name = serializers.CharField(required=False, help_text="SLURM partition name.")
    cpu_arch = serializers.CharField(required=False, help_text="CPU architecture.")
    gpu_arch = serializers.CharField(required=False, help_text="GPU architecture.")
    max_nodes = serializers.IntegerField(
        required=False, allow_null=True, help_text="Most nodes per job."
    )
    max_time = serializers.IntegerField(
        required=False, allow_null=True, help_text="Longest time limit, in minutes."
    )
    qos = serializers.CharField(required=False, help_text="Quality of service name.")


class OfferingPluginOptionsOutputSerializer(serializers.Serializer):
    """Documents a few known plugin options; every stored key is answered (the agent also
    reads keys outside upstream's typed set, e.g. `enforce_qos`)."""

    username_generation_policy = serializers.CharField(
        required=False, help_text="How offering users' usernames are generated."
    )
    service_provider_can_create_offering_user = serializers.BooleanField(
        required=False, help_text="Whether the provider may create offering users."
    )


class StoredJsonField(serializers.Field):
    """A JSON value kept on the row as it was configured, answered read-only."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)


@extend_schema_field(OfferingComponentOutputSerializer(many=True))
class StoredComponentsField(StoredJsonField):
    """A stored list of JSON objects, answered as stored (anything else as an empty list)."""

    def to_representation(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, dict)]


@extend_schema_field(OfferingPartitionOutputSerializer(many=True))
class StoredPartitionsField(StoredComponentsField):
    pass


@extend_schema_field(OfferingPluginOptionsOutputSerializer)
class StoredPluginOptionsField(StoredJsonField):
    """A stored JSON object, answered as stored (anything else as `{}`: the SDK needs an
    object)."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}


class ProviderOfferingOutputSerializer(FieldNarrowingSerializer):
    """An offering as its provider sees it (upstream's ProviderOfferingDetails)."""

    uuid = serializers.UUIDField(help_text="Offering uuid.")
    url = ObjectUrlField("provider-offering-detail", source="*", help_text="Offering URL.")
    name = serializers.CharField(help_text="Offering name.")
    type = serializers.CharField(help_text="Offering type, e.g. Marketplace.Slurm.")
    state = serializers.SerializerMethodField(help_text='Always "Active".')
    customer_uuid = serializers.UUIDField(
        source="customer.uuid", help_text="uuid of the customer (service provider) offering it."
    )
    customer_name = serializers.CharField(source="customer.name", help_text="Customer name.")
    components = StoredComponentsField(help_text="Accounting components, as configured.")
    partitions = StoredPartitionsField(help_text="Cluster partitions, as configured.")
    plugin_options = StoredPluginOptionsField(help_text="Plugin options; `{}` when none.")
    created = serializers.DateTimeField(help_text="When the offering was created.")

    def get_state(self, offering: object) -> str:
        return ACTIVE_OFFERING_STATE


class ServiceProviderOutputSerializer(FieldNarrowingSerializer):
    """A customer with offerings, as a service provider (upstream's ServiceProvider)."""

    uuid = serializers.UUIDField(
        help_text="Service provider uuid: its customer's uuid (no separate provider rows)."
    )
    customer_uuid = serializers.UUIDField(source="uuid", help_text="Customer uuid.")
    customer_name = serializers.CharField(source="name", help_text="Customer name.")


class ServiceProviderListQuerySerializer(serializers.Serializer):
    customer_uuid = serializers.UUIDField(
        required=False, help_text="Only the provider of this customer (32 hex or dashed)."
    )
