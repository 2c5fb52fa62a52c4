"""Services' own exceptions become DRF's error shape in the one exception handler."""

import pytest

from agentstats.api.errors import handle_api_exception
from agentstats.errors import Conflict, InvalidInput, ServiceError


def test_a_field_error_answers_400_with_drfs_field_errors():
    # Given a service refusing one input field
    error = InvalidInput("This offering already has an agent with this name.", field="name")

    # When the API answers it
    response = handle_api_exception(error, {})

    # Then it is the field-error body a serializer would give
    assert response is not None
    assert response.status_code == 400
    assert response.data == {"name": ["This offering already has an agent with this name."]}


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            Conflict("Another owner holds this queue."),
            409,
            {"detail": "Another owner holds this queue.", "code": "conflict"},
        ),
        (InvalidInput(), 400, {"detail": "Invalid input.", "code": "invalid"}),
        (
            ServiceError("Not now.", code="not_now"),
            400,
            {"detail": "Not now.", "code": "not_now"},
        ),
    ],
)
def test_a_service_error_answers_its_status_with_detail_and_code(error, status, body):
    response = handle_api_exception(error, {})

    assert response is not None
    assert response.status_code == status
    assert response.data == body


def test_a_service_error_is_no_drf_exception():
    # Services stay free of HTTP: their errors are plain exceptions until the handler.
    from rest_framework.exceptions import APIException

    assert not issubclass(ServiceError, APIException)
