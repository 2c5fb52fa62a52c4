"""The broker node lists follow an override of their old single names.

`RABBITMQ_MANAGEMENT_URL` and `RABBITMQ_AMQP_URL` name the first node of
`RABBITMQ_MANAGEMENT_URLS` and `RABBITMQ_AMQP_URLS`. Code and tests that override the old
name (override_settings, pytest-django's `settings`) keep working: the list becomes the
overriding value, parsed as the environment's is, and is restored with it.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from rmq.nodes import parse_node_urls

NODE_LISTS = {
    "RABBITMQ_MANAGEMENT_URL": ("RABBITMQ_MANAGEMENT_URLS", ("http", "https")),
    "RABBITMQ_AMQP_URL": ("RABBITMQ_AMQP_URLS", ("amqp", "amqps")),
}


@receiver(setting_changed)
def follow_single_node_override(*, setting: str, value: Any, **kwargs: Any) -> None:
    """Set the node list of an overridden single-node setting to the new value."""
    target = NODE_LISTS.get(setting)
    if target is None or not isinstance(value, str):
        return
    list_name, schemes = target
    try:
        nodes = parse_node_urls(value, schemes=schemes)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting}: {exc}") from None
    setattr(settings, list_name, nodes)
