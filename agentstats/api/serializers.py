"""Shapes every feature's API shares: the error shape `{"detail", "code"}` and object URLs."""

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


@extend_schema_field(OpenApiTypes.URI)
class ObjectUrlField(serializers.Field):
    """The absolute URL of a related object, addressed by its uuid hex as upstream does."""

    def __init__(self, view_name: str, **kwargs: Any) -> None:
        self.view_name = view_name
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        path = reverse(self.view_name, kwargs={"uuid": value.uuid.hex})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
