"""List endpoints page like upstream: a plain JSON array, with Link and X-Result-Count."""

import re

import pytest

from tests.factories import AgentIdentityFactory
from tests.kit.api import IDENTITIES


def _links(response) -> dict[str, str]:
    """Parse a Link header into {rel: url}."""
    return {rel: url for url, rel in re.findall(r'<([^>]+)>;\s*rel="([a-z]+)"', response["Link"])}


@pytest.fixture
def five_identities(offering):
    return AgentIdentityFactory.create_batch(5, offering=offering)


@pytest.fixture
def staff_client(staff_user, client_for):
    return client_for(staff_user)


def test_list_is_a_plain_json_array(five_identities, staff_client):
    # when
    response = staff_client.get(IDENTITIES)

    # then
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [item["uuid"] for item in body] == [
        str(identity.uuid) for identity in sorted(five_identities, key=lambda i: i.name)
    ]
    assert response["X-Result-Count"] == "5"


def test_first_page_holds_page_size_items_and_links_to_the_next(five_identities, staff_client):
    # when
    response = staff_client.get(IDENTITIES, {"page_size": 2})

    # then
    assert response.status_code == 200
    assert len(response.json()) == 2
    assert response["X-Result-Count"] == "5"
    links = _links(response)
    assert set(links) == {"first", "next", "last"}
    assert "page=2" in links["next"]
    assert "page_size=2" in links["next"]
    assert "page=3" in links["last"]


def test_following_next_links_visits_every_item_once(five_identities, staff_client):
    # given
    seen: list[str] = []
    url: str | None = f"{IDENTITIES}?page_size=2"

    # when
    while url is not None:
        response = staff_client.get(url)
        assert response.status_code == 200
        seen.extend(item["uuid"] for item in response.json())
        url = _links(response).get("next")

    # then
    assert sorted(seen) == sorted(str(identity.uuid) for identity in five_identities)
    assert "prev" in _links(response)


def test_last_page_holds_the_remainder_and_links_back(five_identities, staff_client):
    # when
    response = staff_client.get(IDENTITIES, {"page_size": 2, "page": 3})

    # then
    assert response.status_code == 200
    assert len(response.json()) == 1
    links = _links(response)
    assert set(links) == {"first", "prev", "last"}
    assert "page=2" in links["prev"]


def test_head_on_a_list_returns_the_count_without_a_body(five_identities, staff_client):
    # when
    response = staff_client.head(IDENTITIES, {"page_size": 2})

    # then
    assert response.status_code == 200
    assert response["X-Result-Count"] == "5"
    assert response.content == b""


def test_result_count_is_scoped_to_what_the_user_may_see(five_identities, user, client_for):
    # given an outsider, who sees none of the five agents
    client = client_for(user)

    # when
    response = client.get(IDENTITIES, {"page_size": 2})

    # then
    assert response.status_code == 200
    assert response.json() == []
    assert response["X-Result-Count"] == "0"
