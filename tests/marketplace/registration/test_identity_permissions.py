"""Who may do what on the identities endpoints: one permission matrix, roles as in
tests/kit/permission_matrix.py."""

import pytest

from marketplace.models import AgentIdentity, AgentService
from tests.kit.api import IDENTITIES
from tests.kit.permission_matrix import (
    Action,
    Call,
    World,
    check_matrix_case,
    identity_path,
    lists,
    matrix,
    retrieves,
    writes,
)


def _identity_version(world: World) -> str:
    return AgentIdentity.objects.get(pk=world.mine.identity.pk).version


IDENTITY_ACTIONS = {
    "list": Action(lambda w: Call("get", IDENTITIES), lists("identity")),
    "create": Action(
        lambda w: Call(
            "post",
            IDENTITIES,
            {"offering": w.offering.uuid.hex, "name": "agent-new", "version": "1.0.0"},
        ),
        writes(lambda w: AgentIdentity.objects.filter(name="agent-new").exists()),
    ),
    "retrieve": Action(lambda w: Call("get", identity_path(w)), retrieves("identity")),
    "update": Action(
        lambda w: Call(
            "put",
            identity_path(w),
            {
                "offering": str(w.offering.uuid),
                "name": w.mine.identity.name,
                "version": "9.9.9",
            },
        ),
        writes(lambda w: _identity_version(w) == "9.9.9"),
    ),
    "partial_update": Action(
        lambda w: Call("patch", identity_path(w), {"version": "2.0.0"}),
        writes(lambda w: _identity_version(w) == "2.0.0"),
    ),
    "destroy": Action(
        lambda w: Call("delete", identity_path(w)),
        writes(lambda w: not AgentIdentity.objects.filter(pk=w.mine.identity.pk).exists()),
    ),
    "register_service": Action(
        lambda w: Call(
            "post",
            identity_path(w, "register_service/"),
            {"name": "membership_sync", "mode": "membership_sync"},
        ),
        writes(
            lambda w: AgentService.objects.filter(
                identity=w.mine.identity, name="membership_sync"
            ).exists()
        ),
    ),
    "register_event_subscription": Action(
        lambda w: Call(
            "post",
            identity_path(w, "register_event_subscription/"),
            {"observable_object_type": "resource", "description": "resources"},
        ),
        writes(lambda w: w.mine.identity.event_subscriptions.count() == 2),
    ),
}

IDENTITY_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator (not an owner: no right)
    "list": (401, 200, 200, 200, 200, 200),
    "create": (401, 403, 403, 201, 201, 403),
    "retrieve": (401, 403, 200, 200, 200, 403),
    "update": (401, 403, 403, 200, 200, 403),
    "partial_update": (401, 403, 403, 200, 200, 403),
    "destroy": (401, 403, 403, 204, 204, 403),
    "register_service": (401, 403, 403, 201, 201, 403),
    "register_event_subscription": (401, 403, 403, 400, 201, 403),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"),
    matrix(IDENTITY_ACTIONS, IDENTITY_EXPECTED),
)
def test_identity_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    check_matrix_case(
        IDENTITY_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )
