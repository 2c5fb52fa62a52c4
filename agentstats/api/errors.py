"""API errors in DRF's shape, with a machine-readable code on every non-field error."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler

from rmq.exceptions import BrokerError

logger = logging.getLogger(__name__)


class BrokerUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The message broker cannot be asked right now; try again shortly."
    default_code = "broker_unavailable"


class RequestTooLargeError(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class DatabaseUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"


def handle_api_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn broker and database outages into 503s and add `code` to detail errors."""
    if isinstance(exc, Http404):
        exc = NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLargeError(f"The request body must be at most {limit} bytes.")
    elif isinstance(exc, BrokerError):
        exc = BrokerUnavailableError(detail=f"{BrokerUnavailableError.default_detail} ({exc})")
    elif isinstance(exc, DatabaseError):
        logger.error("database error: %s", type(exc).__name__)
        exc = DatabaseUnavailableError()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(response.data, dict) and set(response.data) == {"detail"}:
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else "error"
    return response
