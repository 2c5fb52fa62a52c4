"""A database outage answers 503 in the API's error shape, never a stack trace."""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from agentstats.api.errors import describe_database_outage

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Turn a lost or refused database connection anywhere in a request into a 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable: %s", type(exception).__name__)
        outage = describe_database_outage()
        return JsonResponse({"detail": outage.detail, "code": outage.code}, status=outage.status)
