"""The broker side of housekeeping: what the broker holds, read in a fixed number of bulk
calls, and removing or re-declaring single objects.

The broker is shared with other services: a vhost is the service's only when it carries
SERVICE_VHOST_TAG (rmq.naming); callers decide what to touch from the inventory.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rmq.client import JSONValue, ManagementClient
from rmq.exceptions import BrokerResponseError
from rmq.naming import SERVICE_VHOST_TAG

# The bulk listings one inventory makes: vhosts, queues, users, permissions.
INVENTORY_CALLS = 4


@dataclass(frozen=True, slots=True)
class BrokerInventory:
    """Every vhost (with its tags), queue, user and permission the broker lists."""

    vhost_tags: Mapping[str, frozenset[str]]
    queues: frozenset[tuple[str, str]]
    users: frozenset[str]
    permission_vhosts: Mapping[str, frozenset[str]]

    def tagged_vhosts(self) -> frozenset[str]:
        """The vhosts that carry the service's tag."""
        return frozenset(name for name, tags in self.vhost_tags.items() if is_service_tags(tags))


def is_service_tags(tags: frozenset[str]) -> bool:
    """Whether a vhost's tags mark it as the service's."""
    return SERVICE_VHOST_TAG in tags


def fetch_broker_inventory(client: ManagementClient) -> BrokerInventory:
    """List vhosts, queues, users and permissions: four bulk calls trimmed with `columns=`."""
    timeout = client.snapshot_timeout
    vhosts = client.get_json(["vhosts"], params={"columns": "name,tags"}, timeout=timeout)
    queues = client.get_json(
        ["queues"],
        params={"columns": "name,vhost", "disable_stats": "true"},
        timeout=timeout,
    )
    users = client.get_json(["users"], params={"columns": "name"}, timeout=timeout)
    permissions = client.get_json(
        ["permissions"], params={"columns": "user,vhost"}, timeout=timeout
    )
    permission_vhosts: dict[str, set[str]] = {}
    for item in _items(permissions, "permissions", ("user", "vhost")):
        permission_vhosts.setdefault(item["user"], set()).add(item["vhost"])
    return BrokerInventory(
        vhost_tags={
            item["name"]: parse_vhost_tags(item.get("tags"))
            for item in _items(vhosts, "vhosts", ("name",))
        },
        queues=frozenset(
            (item["vhost"], item["name"]) for item in _items(queues, "queues", ("name", "vhost"))
        ),
        users=frozenset(item["name"] for item in _items(users, "users", ("name",))),
        permission_vhosts={user: frozenset(names) for user, names in permission_vhosts.items()},
    )


def read_vhost_tags(client: ManagementClient, *, vhost: str) -> frozenset[str] | None:
    """One vhost's tags, or None when the broker has no such vhost (one filtered listing)."""
    answer = client.get_json(
        ["vhosts"],
        params={
            "page": "1",
            "page_size": "100",
            "name": f"^{_regex_literal(vhost)}$",
            "use_regex": "true",
            "columns": "name,tags",
        },
    )
    if not isinstance(answer, dict):
        raise BrokerResponseError("management API returned an unexpected vhosts page")
    for item in _items(answer.get("items"), "vhosts", ("name",)):
        if item["name"] == vhost:
            return parse_vhost_tags(item.get("tags"))
    return None


def parse_vhost_tags(raw: JSONValue) -> frozenset[str]:
    """A vhost's tags as the broker lists them: a list (3.8+) or a comma-separated string."""
    if raw is None:
        return frozenset()
    if isinstance(raw, str):
        return frozenset(tag.strip() for tag in raw.split(",") if tag.strip())
    if isinstance(raw, list) and all(isinstance(tag, str) for tag in raw):
        return frozenset(raw)
    raise BrokerResponseError("management API listed vhost tags of an unexpected type")


def declare_queue(
    client: ManagementClient, *, vhost: str, name: str, arguments: Mapping[str, JSONValue]
) -> None:
    """Declare a durable, non-auto-delete queue with its arguments (a no-op when it exists)."""
    client.put(
        ["queues", vhost, name],
        body={"durable": True, "auto_delete": False, "arguments": dict(arguments)},
    )


def delete_queue(client: ManagementClient, *, vhost: str, name: str) -> None:
    """Delete a queue with its messages (a missing one counts as deleted)."""
    client.delete(["queues", vhost, name])


def delete_vhost(client: ManagementClient, *, vhost: str) -> None:
    """Delete a vhost with everything in it (a missing one counts as deleted)."""
    client.delete(["vhosts", vhost])


def _items(answer: JSONValue, resource: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The listed objects, each a JSON object with string values under `keys`."""
    if not isinstance(answer, list):
        raise BrokerResponseError(f"management API returned a {resource} listing that is no list")
    for item in answer:
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in keys):
            raise BrokerResponseError(f"management API listed {resource} of an unexpected shape")
    return answer


def _regex_literal(text: str) -> str:
    """`text` as an Erlang regex matching itself (vhost names here are hex, but be exact)."""
    return "".join(f"\\{char}" if not char.isalnum() else char for char in text)
