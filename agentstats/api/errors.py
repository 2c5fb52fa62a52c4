"""API errors in DRF's shape, with a machine-readable code on every non-field error."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler

from agentstats.api.exceptions import (
    BrokerUnavailableError,
    ConflictError,
    DatabaseUnavailableError,
    RequestTooLargeError,
    UnstorableInputError,
)
from rmq.exceptions import BrokerError

logger = logging.getLogger(__name__)


def handle_api_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn broker and database outages into 503s and add `code` to detail errors.

    Only a lost or refused database is an outage; a unique constraint that a concurrent
    write won is a 409, and a value the database rejects is the client's 400. Any other
    database error is a bug and stays a 500.
    """
    if isinstance(exc, Http404):
        exc = NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLargeError(f"The request body must be at most {limit} bytes.")
    elif isinstance(exc, BrokerError):
        exc = BrokerUnavailableError(detail=f"{BrokerUnavailableError.default_detail} ({exc})")
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable: %s", type(exc).__name__)
        exc = DatabaseUnavailableError()
    elif isinstance(exc, IntegrityError):
        logger.warning("database conflict: %s", type(exc).__name__)
        exc = ConflictError()
    elif isinstance(exc, DataError):
        logger.warning("database rejected a value: %s", type(exc).__name__)
        exc = UnstorableInputError()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(response.data, dict) and set(response.data) == {"detail"}:
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else "error"
    return response
