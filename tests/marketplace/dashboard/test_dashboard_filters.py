"""The fleet dashboard's filters and search narrow the rows; a bad filter is explained
instead of the table."""

import pytest

from tests.kit.dashboard import PAGE, TABLE, client_logged_in_as


@pytest.mark.parametrize(
    ("query", "expected_names"),
    [
        ({}, ["beta", "alpha"]),
        ({"name": "ALP"}, ["alpha"]),
        ({"connected": "false"}, ["beta"]),
        ({"connected": "true"}, ["alpha"]),
        ({"service_state": "error"}, ["alpha"]),
        ({"service_state": "IDLE"}, ["beta"]),
        ({"offering_uuid": "hpc"}, ["alpha"]),
        ({"customer_uuid": "lab"}, ["beta"]),
        (
            {"name": "", "offering_uuid": "", "connected": "", "service_state": ""},
            ["beta", "alpha"],
        ),
        ({"name": "nobody"}, []),
    ],
)
def test_filters_narrow_the_rows(query, expected_names, fleet, support_user):
    # given the filter form's values (uuids by fixture name; empty means "any")
    params = {
        key: str(fleet[value].uuid) if key.endswith("_uuid") and value else value
        for key, value in query.items()
    }
    client = client_logged_in_as(support_user)

    # when the page and its table are asked with them
    page = client.get(PAGE, params)
    table = client.get(TABLE, params)

    # then both list exactly the matching agents
    assert page.status_code == table.status_code == 200
    assert [row.name for row in page.context["table"].rows] == expected_names
    assert [row.name for row in table.context["table"].rows] == expected_names


def test_form_shows_the_chosen_filters_and_every_offering_and_customer(fleet, support_user):
    # when support filters by offering, connection and service state
    hpc = fleet["hpc"]
    page = (
        client_logged_in_as(support_user)
        .get(
            PAGE,
            {"offering_uuid": str(hpc.uuid), "connected": "true", "service_state": "active"},
        )
        .content.decode()
    )

    # then the form keeps those choices and offers every offering and customer
    assert f'<option value="{hpc.uuid}" selected>Uni / HPC</option>' in page
    assert f'<option value="{fleet["lab"].uuid}">Lab</option>' in page
    assert f'<option value="{fleet["uni"].uuid}">Uni</option>' in page
    assert '<option value="true" selected>yes</option>' in page
    assert '<option value="ACTIVE" selected>ACTIVE</option>' in page


@pytest.mark.parametrize("path", [PAGE, TABLE])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"service_state": "BROKEN"}, "service_state: Must be one of ACTIVE, IDLE, ERROR."),
        ({"offering_uuid": "not-a-uuid"}, "offering_uuid: Must be a valid UUID."),
        ({"connected": "maybe"}, "connected: &quot;maybe&quot; is not a valid choice."),
    ],
)
def test_invalid_filter_is_explained_instead_of_the_table(
    path, query, message, support_user, broker, db
):
    # when support asks with a value the API would reject
    response = client_logged_in_as(support_user).get(path, query)

    # then the page says what is wrong, shows no table and does not ask the broker
    page = response.content.decode()
    assert response.status_code == 400
    assert f"<li>{message}</li>" in page
    assert 'id="fleet-agents"' not in page
    assert len(broker.calls) == 0
