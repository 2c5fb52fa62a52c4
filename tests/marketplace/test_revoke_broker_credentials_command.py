"""`manage.py revoke_broker_credentials` runs the sweep once and prints its counts."""

import json
from io import StringIO

from django.core.management import call_command

from marketplace.models import EventConsumer
from marketplace.registration.revocation_signals import (
    connect_revocation_signals,
    disconnect_revocation_signals,
)
from tests.kit.revocation import provisioned_consumer
from tests.marketplace.consumers.management import accept_provisioning


def test_the_command_revokes_a_removed_owners_consumer_and_prints_the_counts(
    identity, owner, customer, broker
):
    # given a consumer whose owner was removed while the signals were off
    accept_provisioning(broker)
    provisioned_consumer(identity, owner)
    disconnect_revocation_signals()
    try:
        customer.owners.remove(owner)
    finally:
        connect_revocation_signals()
    out = StringIO()

    # when
    call_command("revoke_broker_credentials", stdout=out)

    # then
    assert json.loads(out.getvalue()) == {
        "deleted": 1,
        "failed": 0,
        "removed": 0,
        "revoked": 0,
        "rotated": 0,
    }
    assert not EventConsumer.objects.exists()
