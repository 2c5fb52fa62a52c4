"""Drive a live agentstats server through the agent registration flow with the real SDK.

Run as a script (one SDK version per process): python sdk_flow.py BASE_URL TOKEN OFFERING_UUID
It prints one JSON object describing what the server answered, parsed by the SDK's models.
"""

import datetime
import json
import sys
import uuid
from importlib import metadata

from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.event_subscriptions import event_subscriptions_create_queue
from waldur_api_client.api.marketplace_site_agent_identities import (
    marketplace_site_agent_identities_create,
    marketplace_site_agent_identities_list,
    marketplace_site_agent_identities_register_event_subscription,
    marketplace_site_agent_identities_register_service,
    marketplace_site_agent_identities_retrieve,
    marketplace_site_agent_identities_update,
)
from waldur_api_client.api.marketplace_site_agent_services import (
    marketplace_site_agent_services_register_processor,
    marketplace_site_agent_services_set_statistics,
)
from waldur_api_client.models import (
    AgentEventSubscriptionCreateRequest,
    AgentIdentityRequest,
    AgentProcessorCreateRequest,
    AgentServiceCreateRequest,
    AgentServiceStatisticsRequest,
    EventSubscriptionQueueCreateRequest,
    ObservableObjectTypeEnum,
)

try:  # 8.0.9 and later type these; 8.0.0 passes plain values through, as the agent does
    from waldur_api_client.models import (
        AgentDependencyRequest,
        AgentServiceStatisticsRequestStatistics,
    )
except ImportError:
    AgentDependencyRequest = None
    AgentServiceStatisticsRequestStatistics = None


def dependency(package: str, version: str):
    if AgentDependencyRequest is None:
        # What waldur-site-agent 1.0.0 sends: plain dicts with an extra entry_point.
        return {"package": package, "entry_point": package, "version": version}
    return AgentDependencyRequest(package=package, version=version)


def statistics_body(values: dict):
    if AgentServiceStatisticsRequestStatistics is None:
        return AgentServiceStatisticsRequest(statistics=values)
    statistics = AgentServiceStatisticsRequestStatistics.from_dict(values)
    return AgentServiceStatisticsRequest(statistics=statistics)


def as_plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def identity_body(offering_uuid: str, name: str, version: str) -> AgentIdentityRequest:
    return AgentIdentityRequest(
        offering=uuid.UUID(offering_uuid),
        name=name,
        version=version,
        dependencies=[dependency("waldur-api-client", "8")],
        config_file_path="",
        config_file_content="",
        # The real agent sends naive local time.
        last_restarted=datetime.datetime(2026, 11, 26, 0, 34, 36, 841690),
    )


def main(base_url: str, token: str, offering_uuid: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=token)
    name = f"agent-{offering_uuid}"
    seen_before = marketplace_site_agent_identities_list.sync(client=client, name=name)
    created = marketplace_site_agent_identities_create.sync(
        client=client, body=identity_body(offering_uuid, name, "1.0.0")
    )
    found = marketplace_site_agent_identities_list.sync(client=client, name=name)
    updated = marketplace_site_agent_identities_update.sync(
        uuid=found[0].uuid.hex, client=client, body=identity_body(offering_uuid, name, "1.0.1")
    )
    fetched = marketplace_site_agent_identities_retrieve.sync(uuid=created.uuid.hex, client=client)
    service = marketplace_site_agent_identities_register_service.sync(
        uuid=created.uuid.hex,
        client=client,
        body=AgentServiceCreateRequest(name="event_process", mode="event_process"),
    )
    processor = marketplace_site_agent_services_register_processor.sync(
        uuid=service.uuid.hex,
        client=client,
        body=AgentProcessorCreateRequest(
            name="OfferingOrderProcessor", backend_type="slurm", backend_version="23.02"
        ),
    )
    with_stats = marketplace_site_agent_services_set_statistics.sync(
        uuid=service.uuid.hex, client=client, body=statistics_body({"orders_processed": 3})
    )
    subscription = marketplace_site_agent_identities_register_event_subscription.sync(
        uuid=created.uuid.hex,
        client=client,
        body=AgentEventSubscriptionCreateRequest(
            observable_object_type=ObservableObjectTypeEnum.ORDER,
            description="Event subscription created by the site agent",
        ),
    )
    again = marketplace_site_agent_identities_register_event_subscription.sync(
        uuid=created.uuid.hex,
        client=client,
        body=AgentEventSubscriptionCreateRequest(
            observable_object_type=ObservableObjectTypeEnum.ORDER,
        ),
    )
    queue = event_subscriptions_create_queue.sync(
        uuid=subscription.uuid.hex,
        client=client,
        body=EventSubscriptionQueueCreateRequest(
            offering_uuid=uuid.UUID(offering_uuid), object_type=ObservableObjectTypeEnum.ORDER
        ),
    )
    print(
        json.dumps(
            {
                "sdk_version": metadata.version("waldur-api-client"),
                "seen_before": len(seen_before),
                "identity_uuid": created.uuid.hex,
                "identity_type": type(created).__name__,
                "found": [item.uuid.hex for item in found],
                "updated_version": updated.version,
                "fetched_version": fetched.version,
                "fetched_last_restarted": fetched.last_restarted.isoformat(),
                "fetched_services": [item.name for item in fetched.services],
                "service_state": str(service.state),
                "service_identity": service.identity.hex,
                "processor_service_name": processor.service_name,
                "statistics": as_plain(with_stats.statistics),
                "subscription_uuid": subscription.uuid.hex,
                "subscription_again_uuid": again.uuid.hex,
                "user_uuid": subscription.user_uuid.hex,
                "observable_objects": [
                    as_plain(item)["object_type"] for item in subscription.observable_objects
                ],
                "queue_name": queue.queue_name,
                "queue_vhost": queue.vhost,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
