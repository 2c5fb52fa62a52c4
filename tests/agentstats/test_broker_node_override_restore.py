"""An override of the old single-node name ends by restoring the configured node list,
not a list of the one URL the old name holds."""

from django.conf import settings as django_settings
from django.test import override_settings

CLUSTER = ("http://a.test:1", "http://b.test:2")


def _configure_cluster_as_the_environment_does(monkeypatch) -> None:
    # settings.py parses RABBITMQ_MANAGEMENT_URL="http://a.test:1,http://b.test:2" into
    # these two values at start-up.
    monkeypatch.setattr(django_settings, "RABBITMQ_MANAGEMENT_URLS", CLUSTER)
    monkeypatch.setattr(django_settings, "RABBITMQ_MANAGEMENT_URL", CLUSTER[0])


def test_the_configured_cluster_list_is_restored_after_an_override(monkeypatch):
    # given a cluster configured in the environment
    _configure_cluster_as_the_environment_does(monkeypatch)

    # when an override of the old name begins and ends
    with override_settings(RABBITMQ_MANAGEMENT_URL="http://c.test:3"):
        assert django_settings.RABBITMQ_MANAGEMENT_URLS == ("http://c.test:3",)

    # then the whole list is back, not just its first node
    assert django_settings.RABBITMQ_MANAGEMENT_URLS == CLUSTER
    assert CLUSTER[0] == django_settings.RABBITMQ_MANAGEMENT_URL


def test_nested_overrides_restore_each_list_in_turn(monkeypatch):
    _configure_cluster_as_the_environment_does(monkeypatch)

    with override_settings(RABBITMQ_MANAGEMENT_URL="http://c.test:3,http://d.test:4"):
        with override_settings(RABBITMQ_MANAGEMENT_URL="http://e.test:5"):
            assert django_settings.RABBITMQ_MANAGEMENT_URLS == ("http://e.test:5",)
        assert django_settings.RABBITMQ_MANAGEMENT_URLS == ("http://c.test:3", "http://d.test:4")

    assert django_settings.RABBITMQ_MANAGEMENT_URLS == CLUSTER
