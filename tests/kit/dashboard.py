"""The fleet dashboard's pages, a signed-in browser session, and its rows as HTML."""

import re
from datetime import UTC, datetime
from typing import Any

from django.test import Client

PAGE = "/admin/fleet/"
TABLE = "/admin/fleet/table/"
CONNECTED_AT = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)
BROKER_DOWN = "RabbitMQ cannot be asked: RabbitMQ management API is unreachable"


def client_logged_in_as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows_html(page: str) -> dict[str, str]:
    """Each agent row's HTML, by agent uuid."""
    return {
        match.group("uuid"): match.group(0)
        for match in re.finditer(
            r'<tr class="fleet-agent" data-agent-uuid="(?P<uuid>[0-9a-f-]{36})".*?</tr>',
            page,
            flags=re.DOTALL,
        )
    }
