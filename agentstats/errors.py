"""The errors services raise when they refuse a request: one family, mapped to HTTP once.

Services (and the request parser) raise these rather than DRF's exceptions, so they know
nothing of HTTP and stay callable from commands and tests;
`agentstats.api.errors.handle_api_exception` turns them, and the broker's and the
database's failures, into DRF's error shape.
"""

from http import HTTPStatus


class ServiceError(Exception):
    """A refused request: a status, a message for a person and a code for a program.

    With `field`, the message is about that input field (DRF's field-error shape).
    """

    status = HTTPStatus.BAD_REQUEST
    default_detail = "The request cannot be carried out."
    default_code = "error"

    def __init__(
        self, detail: str | None = None, *, code: str | None = None, field: str | None = None
    ) -> None:
        self.detail = detail or self.default_detail
        self.code = code or self.default_code
        self.field = field
        super().__init__(self.detail)


class InvalidInput(ServiceError):
    """The input is well-formed but the data rules it out (a name already taken): 400."""

    status = HTTPStatus.BAD_REQUEST
    default_detail = "Invalid input."
    default_code = "invalid"


class Forbidden(ServiceError):
    """The caller may see the object but not act on it: 403."""

    status = HTTPStatus.FORBIDDEN
    default_detail = "You do not have permission to perform this action."
    default_code = "permission_denied"


class Conflict(ServiceError):
    """The request clashes with what another caller owns or did: 409."""

    status = HTTPStatus.CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(ServiceError):
    """The request body is over the size limit: 413."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class Unavailable(ServiceError):
    """Something this service needs (the broker, the database) cannot be asked: 503."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    default_detail = "A service this one needs is unavailable; try again shortly."
    default_code = "unavailable"
