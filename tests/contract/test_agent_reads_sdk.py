"""The agent's reads and its log shipping through the real SDK (waldur-api-client 8.1.3)
against a live server: every answer parses with the SDK's own models, called exactly as
waldur-site-agent 1.0.7 calls them."""

import time
import uuid

import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_provider_offerings import (
    marketplace_provider_offerings_retrieve,
)
from waldur_api_client.api.marketplace_service_providers import marketplace_service_providers_list
from waldur_api_client.api.marketplace_site_agent_logs import (
    marketplace_site_agent_logs_create,
    marketplace_site_agent_logs_list,
)
from waldur_api_client.api.users import users_me_retrieve
from waldur_api_client.api.version import version_retrieve
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import (
    LevelEnum,
    ProviderOfferingDetails,
    ProviderOfferingDetailsFieldEnum,
    ServiceProvider,
    ServiceProviderFieldEnum,
    SiteAgentLog,
    SiteAgentLogCreateRequest,
    UserMe,
    Version,
)
from waldur_api_client.types import UNSET

from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory

AGENT_OFFERING_FIELDS = [
    ProviderOfferingDetailsFieldEnum.COMPONENTS,
    ProviderOfferingDetailsFieldEnum.CUSTOMER_UUID,
    ProviderOfferingDetailsFieldEnum.PARTITIONS,
    ProviderOfferingDetailsFieldEnum.PLUGIN_OPTIONS,
]


@pytest.fixture
def agent_world(transactional_db, live_server):
    """The agent's user (owner of the offering's customer), its agent and an SDK client."""
    owner = UserFactory(username="site-agent", email="agent@example.org")
    customer = CustomerFactory(owners=[owner], name="HPC Centre")
    offering = OfferingFactory(
        customer=customer,
        components=[
            {"type": "cpu", "name": "CPU", "billing_type": "usage", "measured_unit": "h"},
            {"type": "storage", "billing_type": "limit", "limit_amount": 10, "unit_factor": 1},
        ],
        partitions=[{"partition_name": "batch", "max_nodes": 4}],
        plugin_options={
            "username_generation_policy": "service_provider",
            "enforce_qos": True,
            "site_specific": "kept",
        },
    )
    identity = AgentIdentityFactory(offering=offering, created_by=owner)
    client = AuthenticatedClient(base_url=live_server.url, token=owner.auth_token.key)
    # Closed afterwards: a kept-alive connection holds a server thread and its database
    # session past the test.
    with client:
        yield client, owner, offering, identity


def test_the_processor_reads_parse_as_the_agent_makes_them(agent_world):
    # given the agent's client
    client, owner, offering, _ = agent_world

    # when it makes the reads of a processor's constructor, in order
    version = version_retrieve.sync(client=client)
    me = users_me_retrieve.sync(client=client)
    details = marketplace_provider_offerings_retrieve.sync(
        client=client, uuid=str(offering.uuid), field=AGENT_OFFERING_FIELDS
    )
    providers = marketplace_service_providers_list.sync(
        client=client,
        customer_uuid=details.customer_uuid.hex,
        field=[ServiceProviderFieldEnum.UUID],
    )

    # then each parses with the SDK's model and holds what the agent goes on to use
    assert isinstance(version, Version) and version.version
    assert isinstance(me, UserMe)
    assert (me.username, me.is_staff, me.uuid) == ("site-agent", False, owner.uuid)
    assert [(p.role_name, p.scope_uuid) for p in me.permissions] == [
        ("CUSTOMER.OWNER", offering.customer.uuid)
    ]
    assert isinstance(details, ProviderOfferingDetails)
    assert details.customer_uuid == offering.customer.uuid
    assert {c.type_: str(c.billing_type) for c in details.components} == {
        "cpu": "usage",
        "storage": "limit",
    }
    assert [p.partition_name for p in details.partitions] == ["batch"]
    assert details.plugin_options.enforce_qos is True
    assert details.plugin_options.additional_properties == {"site_specific": "kept"}
    assert str(details.plugin_options.username_generation_policy) == "service_provider"
    assert details.name is UNSET  # narrowed away, as the agent asked
    assert all(isinstance(p, ServiceProvider) for p in providers)
    assert [p.uuid for p in providers] == [offering.customer.uuid]


def test_the_full_offering_and_user_parse_without_narrowing(agent_world):
    # given the agent's client
    client, _, offering, _ = agent_world

    # when it reads everything, as waldur_site_diagnostics does
    details = marketplace_provider_offerings_retrieve.sync(client=client, uuid=offering.uuid)
    me = users_me_retrieve.sync(client=client)

    # then every key parses
    assert (details.uuid, details.name, str(details.state)) == (
        offering.uuid,
        offering.name,
        "Active",
    )
    assert (details.customer_name, me.email) == ("HPC Centre", "agent@example.org")
    assert me.date_joined is not UNSET


def test_an_offering_of_another_customer_is_an_unexpected_status_for_the_sdk(agent_world):
    # given an offering the agent's user has nothing to do with
    client, _, _, _ = agent_world
    stranger = OfferingFactory()

    # when the agent asks for it, then the SDK raises on the 404
    with pytest.raises(UnexpectedStatus) as raised:
        marketplace_provider_offerings_retrieve.sync(client=client, uuid=stranger.uuid)
    assert raised.value.status_code == 404


def test_shipped_log_lines_parse_as_site_agent_logs_and_list_back(agent_world):
    # given two log lines of the agent
    client, _, offering, identity = agent_world
    body = [
        SiteAgentLogCreateRequest(
            agent_identity_uuid=identity.uuid,
            timestamp=time.time() - 1,
            level=level,
            message=f"{level} line",
            module="waldur_site_agent.tests",
        )
        for level in (LevelEnum.INFO, LevelEnum.ERROR)
    ]

    # when the SDK ships them, then lists the errors back
    created = marketplace_site_agent_logs_create.sync(client=client, body=body)
    listed = marketplace_site_agent_logs_list.sync(
        client=client, agent_identity_uuid=identity.uuid, level="ERROR"
    )

    # then both answers parse as SiteAgentLog items
    assert all(isinstance(log, SiteAgentLog) for log in created + listed)
    assert [log.level for log in created] == [LevelEnum.INFO, LevelEnum.ERROR]
    assert {log.offering_uuid for log in created} == {offering.uuid}
    assert [(log.message, log.agent_identity_uuid) for log in listed] == [
        ("ERROR line", identity.uuid)
    ]
    assert isinstance(uuid.UUID(str(listed[0].uuid)), uuid.UUID)
