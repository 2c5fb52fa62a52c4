"""Shapes of the staff clean-up endpoints (the SDK's CleanupRequestRequest,
CleanupResponse and CleanupResponseItem)."""

from rest_framework import serializers

# A hundred years: any larger number of hours only overflows the date arithmetic.
MAX_OLDER_THAN_HOURS = 24 * 365 * 100


class CleanupInputSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=True, help_text="Only list what would be deleted; delete nothing."
    )
    older_than_hours = serializers.IntegerField(
        default=24,
        min_value=1,
        max_value=MAX_OLDER_THAN_HOURS,
        help_text="Services not modified for this many hours are stale (services only).",
    )


class CleanupItemOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="The deleted object's uuid.")
    name = serializers.CharField(help_text="Its name.")
    offering__name = serializers.CharField(
        required=False, help_text="An identity's offering (identities only)."
    )
    created = serializers.DateTimeField(
        required=False, help_text="When the identity was created (identities only)."
    )
    identity__name = serializers.CharField(
        required=False, help_text="The service's agent identity (services only)."
    )
    state = serializers.CharField(
        required=False, help_text="The service's state: Active, Idle or Error (services only)."
    )
    modified = serializers.DateTimeField(
        required=False, help_text="When the service was last modified (services only)."
    )


class CleanupOutputSerializer(serializers.Serializer):
    deleted_count = serializers.IntegerField(
        help_text="How many were deleted (or would be, in a dry run)."
    )
    dry_run = serializers.BooleanField(help_text="Whether this was a dry run.")
    items = CleanupItemOutputSerializer(
        many=True, help_text="What was deleted (or would be, in a dry run)."
    )
