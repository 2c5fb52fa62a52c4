"""One misbehaving agent is throttled on the write path; the others are not."""

from marketplace.models import AgentService
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory


def register_service(client, identity, name: str):
    return client.post(
        f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/register_service/",
        {"name": name, "mode": "order_process"},
        format="json",
    )


def test_agent_over_its_write_rate_gets_429_with_retry_after(settings, client_for, identity, owner):
    # given a limit of 3 writes a minute
    settings.AGENT_WRITE_THROTTLE_RATE = "3/min"
    client = client_for(owner)

    # when the agent writes four times
    codes = [register_service(client, identity, f"s{n}").status_code for n in range(4)]
    throttled = register_service(client, identity, "s-late")

    # then the fourth and later are refused in DRF's shape with a Retry-After, unwritten
    assert codes == [201, 201, 201, 429]
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled.json()["code"] == "throttled"
    assert AgentService.objects.filter(identity=identity).count() == 3


def test_one_throttled_agent_does_not_starve_another(settings, client_for, identity, owner):
    settings.AGENT_WRITE_THROTTLE_RATE = "2/min"
    noisy = client_for(owner)
    for n in range(3):
        register_service(noisy, identity, f"noisy{n}")
    other_owner = UserFactory()
    other_identity = AgentIdentityFactory(
        offering=OfferingFactory(customer=CustomerFactory(owners=[other_owner])),
        created_by=other_owner,
    )

    response = register_service(client_for(other_owner), other_identity, "calm")

    assert response.status_code == 201


def test_reads_are_not_throttled(settings, client_for, identity, owner):
    settings.AGENT_WRITE_THROTTLE_RATE = "1/min"
    client = client_for(owner)

    codes = {
        client.get(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/").status_code
        for _ in range(5)
    }

    assert codes == {200}


def test_empty_rate_disables_the_limit(settings, client_for, identity, owner):
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    client = client_for(owner)

    codes = {register_service(client, identity, f"s{n}").status_code for n in range(5)}

    assert codes == {201}
