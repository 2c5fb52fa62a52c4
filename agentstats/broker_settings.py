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

# The list each active override replaced, innermost last: the value restored on exit is
# only the first node's URL, so re-parsing it would shrink a configured cluster to one node.
_saved_lists: dict[str, list[Any]] = {name: [] for name in NODE_LISTS}


@receiver(setting_changed)
def follow_single_node_override(
    *, setting: str, value: Any, enter: bool = True, **kwargs: Any
) -> None:
    """Set the node list of an overridden single-node setting to the new value, and put
    the list it replaced back when the override ends."""
    target = NODE_LISTS.get(setting)
    if target is None:
        return
    list_name, schemes = target
    if not enter:
        if _saved_lists[setting]:
            setattr(settings, list_name, _saved_lists[setting].pop())
        return
    # Saved on every enter, so each exit (also of an override that fails below) has its own.
    _saved_lists[setting].append(getattr(settings, list_name))
    if not isinstance(value, str):
        return
    try:
        nodes = parse_node_urls(value, schemes=schemes)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting}: {exc}") from None
    setattr(settings, list_name, nodes)
