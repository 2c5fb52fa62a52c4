"""The JSON request parser: size-capped, and hostile nesting is a 400, not a crash."""

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from agentstats.api.json_limits import (
    find_field_nested_deeper_than,
    find_field_nested_deeper_than_in_text,
)
from agentstats.errors import PayloadTooLarge


class BoundedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes and API_JSON_MAX_DEPTH levels."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if limit is not None and length > limit:
            raise PayloadTooLarge(f"The request body must be at most {limit} bytes.")
        max_depth = settings.API_JSON_MAX_DEPTH
        body = stream.read()
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError as exc:
            # Too deep for the (recursive) decoder: find the field in the text instead.
            encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
            text = body.decode(encoding, errors="replace")
            field = find_field_nested_deeper_than_in_text(text, max_depth)
            if field is None:
                raise ParseError("JSON parse error - nested too deeply.") from exc
        else:
            field = find_field_nested_deeper_than(data, max_depth)
        if field is not None:
            raise ValidationError(
                {field: [f"Must not nest objects and arrays more than {max_depth} levels deep."]},
                code="too_deep",
            )
        return data
