"""The API's own error answers, as DRF exceptions (status, detail, code).

Kept apart from the exception handler, which imports DRF's views: the request parser
raises these, and DRF's views import the parser.
"""

from rest_framework import status
from rest_framework.exceptions import APIException


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
