"""Subscription queue names: formatted, parsed and confined by one module."""

import pytest

from rmq.naming import (
    SubscriptionQueueName,
    format_queue_name,
    is_subscription_queue_name,
    parse_queue_name,
    parse_queue_object_type,
)

SUBSCRIPTION = "18b4ecbe541b46b38c9e129f3485911f"
OTHER_SUBSCRIPTION = "0233d0c94a9544c0bca9b1709dc3c24d"
OFFERING = "012013ecc2e84a3c90e2d616541c82fb"


def test_format_queue_name_spells_the_real_agents_queue():
    # Given a subscription, an offering and an object type
    # When the queue is named
    name = format_queue_name(
        subscription_hex=SUBSCRIPTION, offering_hex=OFFERING, object_type="user_role"
    )

    # Then it is the name waldur-site-agent consumes
    assert name == f"subscription_{SUBSCRIPTION}_offering_{OFFERING}_user_role"


def test_parse_queue_name_gives_back_what_format_queue_name_put_in():
    name = format_queue_name(
        subscription_hex=SUBSCRIPTION, offering_hex=OFFERING, object_type="resource"
    )

    assert parse_queue_name(name) == SubscriptionQueueName(
        subscription_hex=SUBSCRIPTION, offering_hex=OFFERING, object_type="resource"
    )
    assert parse_queue_object_type(name) == "resource"


@pytest.mark.parametrize(
    "name",
    [
        "consumer_18b4ecbe541b46b38c9e129f3485911f",
        f"subscription_{SUBSCRIPTION[:-1]}_offering_{OFFERING}_order",
        f"subscription_{SUBSCRIPTION}_offering_{OFFERING}_",
        f"subscription_{SUBSCRIPTION.upper()}_offering_{OFFERING}_order",
        f"prefix_subscription_{SUBSCRIPTION}_offering_{OFFERING}_order",
    ],
)
def test_parse_queue_name_returns_none_for_any_other_name(name):
    assert parse_queue_name(name) is None
    assert parse_queue_object_type(name) is None


def test_a_name_with_the_subscription_prefix_counts_as_a_subscription_queue():
    assert is_subscription_queue_name(f"subscription_{SUBSCRIPTION}_offering_{OFFERING}_order")
    assert is_subscription_queue_name("subscription_garbled")
    assert not is_subscription_queue_name("consumer_18b4ecbe541b46b38c9e129f3485911f")
