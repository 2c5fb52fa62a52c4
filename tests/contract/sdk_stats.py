"""Parse a live connection-stats response with one line of the real SDK.

python sdk_stats.py BASE_URL TOKEN [--observable-objects-as-object]
8.1.x types observable_objects as an object and cannot parse the spec's list; with the
flag the raw body's lists are replaced by {} first, so every other key is still checked.
"""

import json
import sys
from importlib import metadata

import httpx
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_site_agent_connection_stats import (
    marketplace_site_agent_connection_stats_retrieve,
)
from waldur_api_client.models import AgentConnectionStatsResponse


def queue_kind(queue) -> str:
    # 8.1 parses `kind` into an enum; 8.0 keeps it as an additional property.
    kind = getattr(queue, "kind", None) or queue.additional_properties.get("kind")
    return getattr(kind, "value", kind)


def main(base_url: str, token: str, *flags: str) -> None:
    if "--observable-objects-as-object" in flags:
        raw = httpx.get(
            f"{base_url}/api/marketplace-site-agent-connection-stats/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        raw.raise_for_status()
        body = raw.json()
        for agent in body["agents"]:
            for subscription in agent["event_subscriptions"]:
                subscription["observable_objects"] = {}
        parsed = AgentConnectionStatsResponse.from_dict(body)
    else:
        client = AuthenticatedClient(base_url=base_url, token=token)
        parsed = marketplace_site_agent_connection_stats_retrieve.sync(client=client)
    agents = parsed.agents
    print(
        json.dumps(
            {
                "sdk_version": metadata.version("waldur-api-client"),
                "type": type(parsed).__name__,
                "total_agents": parsed.summary.total_agents,
                "connected": {
                    a.uuid.hex: a.event_subscriptions[0].rmq_connection.connected
                    for a in agents
                    if a.event_subscriptions
                },
                "queues": [len(a.queues) for a in agents],
                "queue_kinds": sorted({queue_kind(q) for a in agents for q in a.queues}),
                "service_states": sorted({s.state for a in agents for s in a.services}),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
