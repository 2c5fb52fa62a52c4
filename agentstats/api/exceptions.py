"""The API's own errors: each carries its status, detail and machine-readable code.

Apart from the exception handler (errors.py), so services and parsers can raise them
without importing DRF's views, which load the parsers in turn.
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


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with a concurrent change; reload and retry."
    default_code = "conflict"


class UnstorableInputError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request holds a value the database cannot store or compare."
    default_code = "invalid"
