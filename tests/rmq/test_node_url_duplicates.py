"""Two configured node URLs for the same host:port (e.g. path-prefixed behind one proxy)
would collapse into one node: the list is rejected, naming positions, never the URLs."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from agentstats import settings as settings_module
from rmq.client import ManagementClient
from rmq.nodes import parse_node_urls


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            "http://admin:hunter2@proxy:15672/r1,http://admin:hunter2@proxy:15672/r2",
            "entry 2 of 2 names the same host and port as entry 1",
            id="path-prefixed",
        ),
        pytest.param(
            "http://r1:15672,http://admin:hunter2@r2:15672,http://admin:hunter2@r2:15672/",
            "entry 3 of 3 names the same host and port as entry 2",
            id="repeated",
        ),
        pytest.param(
            "https://admin:hunter2@proxy,https://proxy:443",
            "entry 2 of 2 names the same host and port as entry 1",
            id="default-port",
        ),
    ],
)
def test_a_node_list_with_one_host_and_port_twice_is_improperly_configured(
    raw, message, monkeypatch
):
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", raw)

    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        settings_module._env_node_urls(
            "RABBITMQ_MANAGEMENT_URL", default="http://127.0.0.1:15672", schemes=("http", "https")
        )

    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)
    assert "proxy" not in str(caught.value)


def test_an_amqp_list_with_one_host_and_port_twice_is_rejected():
    with pytest.raises(ValueError, match="entry 2 of 2 names the same host and port as entry 1"):
        parse_node_urls("amqp://u:p@r1/%2F,amqp://u:p@r1:5672/other", schemes=("amqp",))


def test_nodes_on_one_host_with_different_ports_are_distinct():
    assert parse_node_urls("http://h:15672,http://h:15673", schemes=("http",)) == (
        "http://h:15672",
        "http://h:15673",
    )


def test_a_client_given_two_urls_of_one_node_refuses_them():
    with pytest.raises(ValueError, match="same host and port"):
        ManagementClient(
            ("http://proxy:15672/r1", "http://proxy:15672/r2"),
            user="monitor",
            password="pw",
            connect_timeout=1.0,
            read_timeout=1.0,
        )
