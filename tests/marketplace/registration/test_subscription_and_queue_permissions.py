"""Who may do what on the event subscriptions and their queues: one permission matrix each."""

import pytest

from marketplace.models import EventSubscription, EventSubscriptionQueue
from tests.kit.api import QUEUES, SUBSCRIPTIONS
from tests.kit.permission_matrix import (
    Action,
    Call,
    check_matrix_case,
    lists,
    matrix,
    retrieves,
    subscription_path,
    writes,
)

SUBSCRIPTION_ACTIONS = {
    "list": Action(lambda w: Call("get", SUBSCRIPTIONS), lists("subscription")),
    "retrieve": Action(lambda w: Call("get", subscription_path(w)), retrieves("subscription")),
    "destroy": Action(
        lambda w: Call("delete", subscription_path(w)),
        writes(lambda w: not EventSubscription.objects.filter(pk=w.mine.subscription.pk).exists()),
    ),
    "create_queue": Action(
        lambda w: Call(
            "post",
            subscription_path(w, "create_queue/"),
            {"offering_uuid": w.offering.uuid.hex, "object_type": "resource"},
        ),
        writes(
            lambda w: EventSubscriptionQueue.objects.filter(
                event_subscription=w.mine.subscription, object_type="resource"
            ).exists()
        ),
    ),
}

SUBSCRIPTION_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator (not an owner: no right)
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 403),
    "destroy": (401, 403, 403, 204, 204, 403),
    "create_queue": (401, 403, 403, 201, 201, 403),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), matrix(SUBSCRIPTION_ACTIONS, SUBSCRIPTION_EXPECTED)
)
def test_event_subscription_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    check_matrix_case(
        SUBSCRIPTION_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


QUEUE_ACTIONS = {
    "list": Action(lambda w: Call("get", QUEUES), lists("queue")),
    "retrieve": Action(
        lambda w: Call("get", f"{QUEUES}{w.mine.queue.uuid.hex}/"), retrieves("queue")
    ),
}

QUEUE_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator (not an owner: no right)
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 403),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), matrix(QUEUE_ACTIONS, QUEUE_EXPECTED)
)
def test_event_subscription_queue_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    check_matrix_case(
        QUEUE_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )
