"""API errors in DRF's shape, with a machine-readable code on every non-field error.

The one place where the project's own exceptions (services' `ServiceError`s, the broker's
`BrokerError`s, database outages) become HTTP answers.
"""

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from agentstats.errors import Conflict, InvalidInput, PayloadTooLarge, ServiceError, Unavailable
from rmq.exceptions import BrokerError

logger = logging.getLogger(__name__)

BROKER_UNAVAILABLE_DETAIL = "The message broker cannot be asked right now; try again shortly."


def handle_api_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map service refusals to their status, broker and database outages to 503s, and add
    `code` to detail errors.

    Only a lost or refused database is an outage; a unique constraint that a concurrent
    write won is a 409, and a value the database rejects is the client's 400. Any other
    database error is a bug and stays a 500.
    """
    is_broker_outage = isinstance(exc, BrokerError)
    if isinstance(exc, Http404):
        exc = NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    else:
        error = _as_service_error(exc)
        if error is not None:
            exc = _to_api_exception(error)
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if is_broker_outage:
        # The shared snapshot retries the broker once per BROKER_FAILURE_TTL.
        response["Retry-After"] = str(max(1, math.ceil(settings.BROKER_FAILURE_TTL)))
    if isinstance(response.data, dict) and set(response.data) == {"detail"}:
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else "error"
    return response


def answer_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A path no route matches: under /api/ the API's JSON 404 (clients such as the agent
    call endpoints this service does not have), elsewhere Django's page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": NotFound.default_detail, "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def _as_service_error(exc: Exception) -> ServiceError | None:
    """The project's error for an exception this handler answers itself, if it is one."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"The request body must be at most {limit} bytes.")
    if isinstance(exc, BrokerError):
        return Unavailable(f"{BROKER_UNAVAILABLE_DETAIL} ({exc})", code="broker_unavailable")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable: %s", type(exc).__name__)
        return describe_database_outage()
    if isinstance(exc, IntegrityError):
        logger.warning("database conflict: %s", type(exc).__name__)
        return Conflict("The request conflicts with a concurrent change; reload and retry.")
    if isinstance(exc, DataError):
        logger.warning("database rejected a value: %s", type(exc).__name__)
        return InvalidInput("The request holds a value the database cannot store or compare.")
    return None


def describe_database_outage() -> Unavailable:
    """The answer to a lost or refused database, wherever it is noticed."""
    return Unavailable(
        "The database is unavailable; try again shortly.", code="database_unavailable"
    )


def _to_api_exception(error: ServiceError) -> APIException:
    """The DRF exception that answers as `error` asks: field errors or detail and code."""
    api_error = (
        ValidationError({error.field: [error.detail]}, code=error.code)
        if error.field is not None
        else APIException(error.detail, code=error.code)
    )
    api_error.status_code = int(error.status)
    return api_error
