"""Shapes every endpoint shares: the error answer `{"detail", "code"}` and input checks."""

from typing import Any

from rest_framework import serializers


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


def validated_input(serializer_class: type, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate request data with an input serializer (400 with field errors if bad)."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
