"""Request input, validated by an input serializer before a view uses it."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from agentstats.api.json_limits import UNSTORABLE_TEXT_DETAIL, find_field_with_unstorable_text


def validated_input(
    serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    """Validate request data with an input serializer (400 with field errors if bad).

    Text the database cannot store (NUL, a lone surrogate) anywhere in the accepted
    values, nested JSON included, is a 400 on its field rather than a database error.
    """
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    field = find_field_with_unstorable_text(serializer.validated_data)
    if field is not None:
        raise serializers.ValidationError({field: [UNSTORABLE_TEXT_DETAIL]}, code="invalid")
    return dict(serializer.validated_data)


def reject_future_time(value: datetime) -> None:
    """A DRF validator: a client's time may run at most AGENT_CLOCK_SKEW_SECONDS ahead of
    this server's clock (a time in the year 9999 would pin state derived from it)."""
    skew = settings.AGENT_CLOCK_SKEW_SECONDS
    if value > timezone.now() + timedelta(seconds=skew):
        raise serializers.ValidationError(
            f"Must not be more than {skew:g} s ahead of this server's clock.", code="in_future"
        )
