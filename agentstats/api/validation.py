"""Request input, validated by an input serializer before a view uses it."""

from typing import Any

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
