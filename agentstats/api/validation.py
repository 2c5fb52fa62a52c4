"""Request input, validated by an input serializer before a view uses it."""

from typing import Any

from rest_framework import serializers


def validated_input(
    serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    """Validate request data with an input serializer (400 with field errors if bad)."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
