"""Revoking a broker user's access: set its password, list and close its connections.

RabbitMQ (checked on 3.10) checks a password only at log-in: changing it leaves open
connections running, so a rotated credential needs its connections closed too. Deleting
a user closes its connections.
"""

from collections import defaultdict
from dataclasses import dataclass

from rmq.client import ManagementClient

CLOSE_REASON = "broker credential revoked"


@dataclass(frozen=True, slots=True)
class UserConnections:
    """The names of the open connections of each broker user, from one listing."""

    by_user: dict[str, tuple[str, ...]]

    def of(self, username: str) -> tuple[str, ...]:
        """The connection names of one user (none when it has no connection)."""
        return self.by_user.get(username, ())


def list_user_connections(client: ManagementClient) -> UserConnections:
    """List every open connection once, trimmed to name and user, grouped by user."""
    listed = client.get_json(["connections"], params={"columns": "name,user,vhost"})
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            grouped[str(item.get("user", ""))].append(item["name"])
    return UserConnections(by_user={user: tuple(names) for user, names in grouped.items()})


def close_connection(client: ManagementClient, *, name: str) -> None:
    """Close one connection (one already gone counts as closed)."""
    client.delete(["connections", name], headers={"X-Reason": CLOSE_REASON})


def close_user_connections(
    client: ManagementClient, *, username: str, connections: UserConnections | None = None
) -> int:
    """Close every open connection of a broker user; return how many were asked to close.

    `connections` is a listing taken before (one per sweep); without it, one is taken.
    """
    listing = connections if connections is not None else list_user_connections(client)
    names = listing.of(username)
    for name in names:
        close_connection(client, name=name)
    return len(names)


def set_user_password(client: ManagementClient, *, username: str, password: str) -> None:
    """Replace a broker user's password (its permissions stay; open connections do not
    notice: close them)."""
    client.put(["users", username], body={"password": password, "tags": ""})
