"""RABBITMQ_MANAGEMENT_URL and RABBITMQ_AMQP_URL as node lists: parsed at start-up into
RABBITMQ_MANAGEMENT_URLS / RABBITMQ_AMQP_URLS, a bad entry named by position (never
echoed: it may hold a password), and an override of the old name followed by the list."""

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from agentstats import settings as settings_module
from rmq.client import ManagementClient
from rmq.nodes import node_label, parse_node_urls


def test_a_single_url_is_a_list_of_one_and_the_old_name_keeps_it(monkeypatch):
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", "http://rabbit.test:15672/")

    nodes = settings_module._env_node_urls(
        "RABBITMQ_MANAGEMENT_URL", default="http://127.0.0.1:15672", schemes=("http", "https")
    )

    assert nodes == ("http://rabbit.test:15672/",)


def test_a_comma_separated_list_keeps_its_order_and_drops_spaces(monkeypatch):
    monkeypatch.setenv("RABBITMQ_AMQP_URL", " amqp://u:p@r1:5672/%2F , amqps://u:p@r2/%2F")

    nodes = settings_module._env_node_urls(
        "RABBITMQ_AMQP_URL",
        default="amqp://guest:guest@127.0.0.1:5672/%2F",
        schemes=("amqp", "amqps"),
    )

    assert nodes == ("amqp://u:p@r1:5672/%2F", "amqps://u:p@r2/%2F")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("http://r1:15672,,http://r3:15672", "entry 2 of 3 is empty", id="empty"),
        pytest.param("http://r1:15672,", "entry 2 of 2 is empty", id="trailing-comma"),
        pytest.param(
            "http://r1:15672,ftp://admin:hunter2@r2",
            "entry 2 of 2 is not a http/https URL",
            id="scheme",
        ),
        pytest.param("http://admin:hunter2@:15672", "entry 1 of 1 is not a http/https", id="host"),
        pytest.param("http://admin:hunter2@r1:port", "entry 1 of 1 is not a URL", id="port"),
    ],
)
def test_a_bad_entry_is_improperly_configured_naming_its_position_only(raw, message, monkeypatch):
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", raw)

    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        settings_module._env_node_urls(
            "RABBITMQ_MANAGEMENT_URL", default="http://127.0.0.1:15672", schemes=("http", "https")
        )

    assert str(caught.value).startswith("RABBITMQ_MANAGEMENT_URL: ")
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)


def test_the_defaults_are_one_local_node_and_a_ten_second_memory():
    assert django_settings.RABBITMQ_MANAGEMENT_URLS[0] == django_settings.RABBITMQ_MANAGEMENT_URL
    assert django_settings.RABBITMQ_AMQP_URLS[0] == django_settings.RABBITMQ_AMQP_URL
    assert parse_node_urls("http://127.0.0.1:15672", schemes=("http",)) == (
        "http://127.0.0.1:15672",
    )
    assert django_settings.RABBITMQ_NODE_DOWN_SECONDS == 10.0


def test_overriding_the_old_single_name_overrides_the_list_and_the_client(settings):
    # when a test (or override_settings) sets the old name to a list
    settings.RABBITMQ_MANAGEMENT_URL = "http://r1.test:15672,http://r2.test:15672"
    settings.RABBITMQ_AMQP_URL = "amqp://guest:guest@r1.test:5672/%2F"

    # then the lists follow, and so does the client from settings
    assert settings.RABBITMQ_MANAGEMENT_URLS == ("http://r1.test:15672", "http://r2.test:15672")
    assert settings.RABBITMQ_AMQP_URLS == ("amqp://guest:guest@r1.test:5672/%2F",)
    assert ManagementClient.from_settings().node_labels == ("r1.test:15672", "r2.test:15672")


def test_the_lists_are_restored_with_the_old_name():
    # (runs after the override above, in any order: the default is a single local node)
    assert len(django_settings.RABBITMQ_MANAGEMENT_URLS) == 1
    assert django_settings.RABBITMQ_MANAGEMENT_URLS[0] == django_settings.RABBITMQ_MANAGEMENT_URL


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("http://admin:pw@rabbit-1:15672/", "rabbit-1:15672"),
        ("https://rabbit.example.org", "rabbit.example.org:443"),
        ("amqp://u:p@10.0.0.5/%2F", "10.0.0.5:5672"),
        ("http://[::1]:15672", "[::1]:15672"),
    ],
)
def test_a_node_label_is_host_and_port_without_userinfo(url, label):
    assert node_label(url) == label
