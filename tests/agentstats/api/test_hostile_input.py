"""Bodies the API must refuse in DRF's error shape: wrong media types, oversized bodies."""

import json

import pytest

from marketplace.models import AgentIdentity
from tests.kit.api import IDENTITIES


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "offering=x&name=y"),
        ("application/x-www-form-urlencoded", "offering=x&name=y"),
        ("application/xml", "<identity/>"),
    ],
)
def test_non_json_bodies_are_415_and_write_nothing(content_type, body, client_for, owner, offering):
    response = client_for(owner).post(IDENTITIES, body, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert AgentIdentity.objects.count() == 0


def test_a_body_over_the_upload_limit_is_413_and_writes_nothing(
    settings, client_for, owner, offering
):
    # given a 10 kB limit and a 20 kB body
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps(
        {"offering": str(offering.uuid), "name": "big", "config_file_content": "x" * 20_000}
    )

    response = client_for(owner).post(IDENTITIES, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body must be at most 10000 bytes.",
        "code": "request_too_large",
    }
    assert AgentIdentity.objects.count() == 0


def test_malformed_json_is_400_parse_error(client_for, owner, offering):
    response = client_for(owner).post(
        IDENTITIES, '{"offering": "x", "name": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
