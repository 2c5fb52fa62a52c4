"""The plain-dict response builder writes exactly what the documented serializers write.

The serializers in agentstats/serializers.py are the schema; report_data builds the body
without them for speed. Both render the same reports here and the JSON bytes must match,
key order included, for every kind of value the report can hold.
"""

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from rest_framework.renderers import JSONRenderer

from marketplace.stats.answers import render_json
from marketplace.stats.merge import AgentRow, ServiceRow, SubscriptionRow, build_connection_report
from marketplace.stats.rendering import format_time, prepare_agents, render_agent, render_report
from marketplace.stats.serializers import (
    AgentConnectionOutputSerializer,
    ConnectionStatsOutputSerializer,
)
from rmq.types import BrokerConnection, BrokerQueue, BrokerSnapshot

VHOST = "9a2b386ca3464aee9f313c0f20518f57"
OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
T0 = datetime(2026, 11, 24, 6, 44, 28, 123456, tzinfo=UTC)
# A time the database driver could hand back in another zone: still written in UTC.
T_PLUS_2 = datetime(2026, 11, 24, 8, 44, 28, tzinfo=timezone(timedelta(hours=2)))


def _queue(sub: UUID, object_type: str) -> str:
    return f"subscription_{sub.hex}_offering_{OFFERING.hex}_{object_type}"


def _fleet() -> tuple[list[AgentRow], BrokerSnapshot]:
    """Agents covering every shape: connected or not, owner or none, queues present,
    missing on the broker or only on the broker, several object types, no services."""
    subs = [uuid4() for _ in range(5)]
    rows = [
        AgentRow(
            uuid=uuid4(),
            name="connected",
            offering_uuid=OFFERING,
            offering_name="HPC",
            version="1.0.0",
            last_restarted=T0,
            user_uuid=uuid4(),
            user_username="owner",
            user_full_name="Ada Lovelace",
            user_is_staff=False,
            services=(
                ServiceRow(uuid=uuid4(), name="orders", state="ACTIVE", modified=T0),
                ServiceRow(uuid=uuid4(), name="report", state="ERROR", modified=T_PLUS_2),
            ),
            subscriptions=(
                SubscriptionRow(
                    uuid=subs[0],
                    created=T0,
                    vhost=VHOST,
                    object_types=("order", "resource"),
                    queue_names=(_queue(subs[0], "order"), _queue(subs[0], "resource")),
                ),
                SubscriptionRow(
                    uuid=subs[1],
                    created=T_PLUS_2,
                    vhost=VHOST,
                    object_types=(),
                    queue_names=(_queue(subs[1], "missing"),),
                ),
            ),
        ),
        AgentRow(
            uuid=uuid4(),
            # Everything a JSON writer may escape differently.
            name='disconnected, no owner: "quoted" \\ é 🚀 \x1b[31m \n\t \u2028 \u2029 \x7f',
            offering_uuid=OFFERING,
            offering_name="HPC",
            version="",
            last_restarted=T_PLUS_2,
            user_uuid=None,
            user_username=None,
            user_full_name=None,
            user_is_staff=None,
            services=(),
            subscriptions=(
                SubscriptionRow(
                    uuid=subs[2],
                    created=T0,
                    vhost=VHOST,
                    object_types=("usage",),
                    queue_names=(),
                ),
            ),
        ),
        AgentRow(
            uuid=uuid4(),
            name="no subscriptions",
            offering_uuid=OFFERING,
            offering_name="Cloud",
            version="0.9",
            last_restarted=datetime(2026, 1, 1, tzinfo=UTC),
            user_uuid=uuid4(),
            user_username="staff",
            user_full_name="",
            user_is_staff=True,
            services=(ServiceRow(uuid=uuid4(), name="sync", state="IDLE", modified=T0),),
            subscriptions=(),
        ),
    ]
    snapshot = BrokerSnapshot(
        connections=(
            BrokerConnection(
                name="127.0.0.1:1 -> 127.0.0.1:15674",
                user=subs[0].hex,
                vhost=VHOST,
                peer_host="127.0.0.1",
                connected_at=datetime(2026, 11, 24, 7, 0, 0, 520000, tzinfo=UTC),
                state="running",
                recv_oct=501,
                send_oct=286,
                protocol="Web STOMP 1.2",
                node="rabbit@localhost",
            ),
            # Listed before the broker reports its stats: every optional field is null.
            BrokerConnection(
                name="127.0.0.1:2 -> 127.0.0.1:15674",
                user=subs[1].hex,
                vhost=VHOST,
                peer_host=None,
                connected_at=None,
                state=None,
                recv_oct=None,
                send_oct=None,
                protocol=None,
                node=None,
            ),
        ),
        queues=(
            BrokerQueue(vhost=VHOST, name=_queue(subs[0], "order"), messages=3, consumers=1),
            BrokerQueue(vhost=VHOST, name=_queue(subs[0], "resource"), messages=None, consumers=0),
            # Only on the broker, named after the second agent's subscription.
            BrokerQueue(vhost=VHOST, name=_queue(subs[2], "usage"), messages=7, consumers=None),
        ),
        taken_at=T0,
    )
    return rows, snapshot


def _render(data: object) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize("connected", [None, True, False])
def test_plain_report_is_byte_identical_to_the_serializers(connected):
    # Given a fleet with every shape of value, merged with a snapshot
    rows, snapshot = _fleet()
    report = build_connection_report(rows, snapshot, connected=connected)

    # When the body is built by the serializers and by report_data (prepared or not)
    expected = _render(ConnectionStatsOutputSerializer(report).data)
    prepared = prepare_agents(rows)

    # Then the JSON is the same bytes, whichever writer writes it
    assert _render(render_report(report, prepared)) == expected
    assert _render(render_report(report)) == expected
    assert render_json(render_report(report)) == expected
    assert report.agents, "the filter must leave something to compare"


def test_plain_agent_is_byte_identical_to_the_serializer():
    rows, snapshot = _fleet()
    report = build_connection_report(rows, snapshot)

    for agent in report.agents:
        assert _render(render_agent(agent)) == _render(AgentConnectionOutputSerializer(agent).data)


def test_plain_report_fills_the_live_fields_into_the_prepared_entries():
    # Given prepared entries (built while the broker answered)
    rows, snapshot = _fleet()
    prepared = prepare_agents(rows)
    assert all(entry["queues"] == [] for entry in prepared.values())

    # When the report is rendered
    data = render_report(build_connection_report(rows, snapshot), prepared)

    # Then the live fields come from the snapshot
    first = data["agents"][0]
    assert first is prepared[rows[0].uuid]
    assert first["connected"] is True
    assert [sub["rmq_connection"]["connected"] for sub in first["event_subscriptions"]] == [
        True,
        True,
    ]
    assert first["event_subscriptions"][1]["rmq_connection"]["state"] is None
    assert [queue["exists_on_broker"] for queue in first["queues"]] == [True, True, False]
    assert data["agents"][1]["queues"][0]["messages"] == 7
    assert data["summary"]["snapshot_taken_at"] == "2026-11-24T06:44:28.123456Z"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC), "2026-11-24T06:44:28Z"),
        (T0, "2026-11-24T06:44:28.123456Z"),
        (T_PLUS_2, "2026-11-24T06:44:28Z"),
    ],
)
def test_times_are_written_in_utc_with_a_z(value, text):
    assert format_time(value) == text
