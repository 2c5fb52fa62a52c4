"""What a client's JSON may hold: a bounded nesting depth and only text the database stores.

Both walks are iterative (an explicit stack), so no document, however deep, can exhaust
Python's recursion limit here; everything after the parser then sees at most
API_JSON_MAX_DEPTH levels, which the standard library's (recursive) encoder and the
serializers handle with room to spare.
"""

import json
import re
from collections.abc import Iterator
from typing import Any

# PostgreSQL refuses NUL in text and jsonb, and no UTF-8 encoding exists for a lone
# surrogate (JSON's "\ud800" escape decodes to one).
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT_DETAIL = "Must not contain NUL characters or unpaired UTF-16 surrogates."
# The tokens of JSON text that matter for nesting: whole strings (skipped), brackets, commas.
NESTING_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def find_field_nested_deeper_than(data: Any, max_depth: int) -> str | None:
    """The top-level key (or list index) under which `data` nests containers more than
    `max_depth` deep (the body itself is level 1), or None when it does not."""
    for field, depth, value in _walk(data):
        if depth > max_depth and isinstance(value, dict | list):
            return field
    return None


def find_field_nested_deeper_than_in_text(text: str, max_depth: int) -> str | None:
    """As find_field_nested_deeper_than, for JSON text too deep for the decoder to parse:
    a scan of its brackets (strings skipped), stopping at the first too-deep one."""
    depth = 0
    field: str | None = None
    index = 0
    is_object = False
    for match in NESTING_TOKENS.finditer(text):
        piece = match.group()
        if piece in "[{":
            depth += 1
            if depth == 1:
                is_object = piece == "{"
            if depth > max_depth:
                return field or "non_field_errors"
        elif piece in "]}":
            depth -= 1
        elif piece == ",":
            index += depth == 1
            field = None if is_object and depth == 1 else field
        if depth == 1 and not is_object and piece != "]":
            field = str(index)
        elif depth == 1 and piece.startswith('"') and field is None:
            field = _decode_key(piece)
    return None


def _decode_key(piece: str) -> str:
    try:
        return str(json.loads(piece))
    except ValueError:
        return "non_field_errors"


def find_field_with_unstorable_text(data: Any) -> str | None:
    """The top-level key (or list index) whose value (or a key inside it) holds a NUL
    character or a lone surrogate, or None when all its text can be stored."""
    for field, _, value in _walk(data):
        if isinstance(value, str) and UNSTORABLE_CHARACTERS.search(value):
            return field
    return None


def _walk(data: Any) -> Iterator[tuple[str, int, Any]]:
    """(top-level field, container depth, value) for every value and dict key in `data`,
    depth first; the field of the body itself is "non_field_errors"."""
    stack: list[tuple[str | None, int, Any]] = [(None, 1, data)]
    while stack:
        field, depth, value = stack.pop()
        yield field or "non_field_errors", depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                child_field = field or str(key)
                yield child_field, depth, key
                stack.append((child_field, depth + 1, item))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                stack.append((field or str(index), depth + 1, item))
