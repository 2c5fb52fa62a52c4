"""Who may do what on the services and processors endpoints: one permission matrix each."""

import pytest

from marketplace.models import AgentProcessor, AgentService
from tests.kit.api import PROCESSORS, SERVICES
from tests.kit.permission_matrix import (
    Action,
    Call,
    check_matrix_case,
    lists,
    matrix,
    retrieves,
    service_path,
    writes,
)

SERVICE_ACTIONS = {
    "list": Action(lambda w: Call("get", SERVICES), lists("service")),
    "retrieve": Action(lambda w: Call("get", service_path(w)), retrieves("service")),
    "register_processor": Action(
        lambda w: Call(
            "post",
            service_path(w, "register_processor/"),
            {"name": "NewProcessor", "backend_type": "slurm", "backend_version": "23.02"},
        ),
        writes(
            lambda w: AgentProcessor.objects.filter(
                service=w.mine.service, name="NewProcessor"
            ).exists()
        ),
    ),
    "set_statistics": Action(
        lambda w: Call("post", service_path(w, "set_statistics/"), {"statistics": {"orders": 3}}),
        writes(
            lambda w: AgentService.objects.get(pk=w.mine.service.pk).statistics == {"orders": 3}
        ),
    ),
}

SERVICE_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator (not an owner: no right)
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 403),
    "register_processor": (401, 403, 403, 201, 201, 403),
    "set_statistics": (401, 403, 403, 200, 200, 403),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), matrix(SERVICE_ACTIONS, SERVICE_EXPECTED)
)
def test_service_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    check_matrix_case(
        SERVICE_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


PROCESSOR_ACTIONS = {
    "list": Action(lambda w: Call("get", PROCESSORS), lists("processor")),
    "retrieve": Action(
        lambda w: Call("get", f"{PROCESSORS}{w.mine.processor.uuid.hex}/"),
        retrieves("processor"),
    ),
}

PROCESSOR_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator (not an owner: no right)
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 403),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), matrix(PROCESSOR_ACTIONS, PROCESSOR_EXPECTED)
)
def test_processor_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    check_matrix_case(
        PROCESSOR_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )
