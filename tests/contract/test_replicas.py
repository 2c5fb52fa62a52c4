"""Replicas as production runs them: two app instances (gunicorn, 2 workers each) and two
`manage.py observe_connections` processes, sharing the test PostgreSQL database and a
private Redis db, against the real RabbitMQ.

- The apps reach the management API through a counting proxy: with many pollers on both,
  the broker sees at most one connections listing per BROKER_SNAPSHOT_TTL in all.
- Real STOMP-over-WebSocket agent connections open and close while both observers run:
  one observer is active (the lease), and the timeline has each connection once.
- The active observer is SIGKILLed: the standby takes the lease once it expires (within
  OBSERVER_LEASE_SECONDS + OBSERVER_STANDBY_POLL_SECONDS of the kill), reconciles, and
  records what happened during the handover and after it.

Row locks alone keep two active observers from writing an event twice, so "only one was
active" is read from the processes' own logs ("observer <holder> is active").
"""

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
import requests
from rest_framework.authtoken.models import Token

from marketplace.models import AgentConnectionEvent, AgentIdentity, ObserverStatus
from marketplace.names import ConnectionEventKind
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.counting_proxy import CountingProxy
from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get, provision_agent
from tests.kit.replicas import Replica, running_replicas, url_of_test_database
from tests.kit.services import MANAGEMENT, require_service
from tests.kit.stomp_agent import connect_agent, subscribe_like_agent

REDIS_DB = 12  # private to this test: it flushes it
TTL = 1.0
POLL_WINDOW_SECONDS = 10 * TTL
POLLER_THREADS = 6
LEASE, HEARTBEAT, POLL = 8, 1, 1
# The handover bound after a SIGKILL: the lease runs out at most LEASE after the killed
# observer's last beat, and a standby looks every POLL. Slack for a loaded 2-core machine.
HANDOVER_BOUND = LEASE + POLL
HANDOVER_SLACK = 10
AGENTS = 3
ROUNDS = 2
# Generous: six Django processes start at once on a busy machine.
DEADLINE = 120
CONNECTED, DISCONNECTED = ConnectionEventKind.CONNECTED, ConnectionEventKind.DISCONNECTED


@pytest.fixture
def redis_cache() -> Iterator[str]:
    """A Redis db of its own, empty before and after, as CACHE_URL for the processes."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=1)
    try:
        is_up = bool(client.ping())
    except redis.RedisError:
        is_up = False
    require_service(is_up, "Redis on 127.0.0.1:6379")
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


@pytest.fixture
def fleet(transactional_db, real_postgres, real_broker):
    """AGENTS agents of one owner, each with a subscription and queue on the real broker,
    and a support user who polls the stats."""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    agents = []
    for n in range(AGENTS):
        identity = AgentIdentityFactory(
            name=f"replica-agent-{n}", offering=offering, created_by=owner
        )
        subscription, queue = provision_agent(identity, owner=owner, object_type="order")
        agents.append((identity, subscription.uuid.hex, queue.queue_name))
    support = UserFactory(is_support=True)
    return {
        "vhost": owner.uuid.hex,
        "owner_token": Token.objects.get_or_create(user=owner)[0].key,
        "support_token": Token.objects.get_or_create(user=support)[0].key,
        "agents": agents,
    }


def common_environment(cache_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url_of_test_database(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CACHE_URL": cache_url,
        "SECRET_KEY": "test-only-secret-key",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "BROKER_SNAPSHOT_TTL": str(TTL),
        "OBSERVER_LEASE_SECONDS": str(LEASE),
        "OBSERVER_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "OBSERVER_STANDBY_POLL_SECONDS": str(POLL),
        # The periodic reconcile (in every observer process, claimed once per period) is
        # the safety net for a connection the management API lists late, after the new
        # active observer's own reconcile; the other jobs would touch the shared broker.
        "JOB_RECONCILE_CONNECTIONS_SECONDS": "10",
        "JOB_RECONCILE_BROKER_SECONDS": "0",
        "JOB_REVOKE_BROKER_CREDENTIALS_SECONDS": "0",
        "AGENT_WRITE_THROTTLE_RATE": "",
        "LOG_LEVEL": "INFO",
    }


def lease() -> ObserverStatus | None:
    return ObserverStatus.objects.filter(name="default").first()


def holder_pid(status: ObserverStatus) -> int:
    _host, pid, _suffix = status.lease_holder.split(":")
    return int(pid)


def active_observer(observers: list[Replica]) -> Replica | None:
    status = lease()
    if status is None or not status.lease_holder or status.last_reconciled_at is None:
        return None
    return next((o for o in observers if o.pid == holder_pid(status)), None)


def poll_stats(apps: list[Replica], token: str, *, seconds: float) -> list[tuple[str, int]]:
    """POLLER_THREADS threads GET the stats from every app in turn for `seconds`."""
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def poller(offset: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        n = offset
        while time.monotonic() < deadline:
            app = apps[n % len(apps)]
            response = session.get(f"{app.url}{STATS_URL}", timeout=(5, 60))
            with lock:
                answers.append((app.name, response.status_code))
            n += 1

    threads = [threading.Thread(target=poller, args=(n,)) for n in range(POLLER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return answers


def churn_connections(fleet: dict, *, rounds: int) -> int:
    """Every agent connects over STOMP-over-WebSocket, listens a moment and disconnects,
    `rounds` times; return how many connections were made."""
    made = 0
    for _ in range(rounds):
        clients = []
        for _identity, login, queue_name in fleet["agents"]:
            client, _ = connect_agent(
                vhost=fleet["vhost"], login=login, passcode=fleet["owner_token"]
            )
            subscribe_like_agent(client, queue_name)
            clients.append(client)
            made += 1
        time.sleep(1)
        for client in clients:
            client.disconnect()
    return made


def connected_reasons(identity: AgentIdentity, *, besides: set[str]) -> list[str]:
    """The reasons of the identity's connect events, for connections not in `besides`."""
    events = AgentConnectionEvent.objects.filter(
        identity=identity, kind=ConnectionEventKind.CONNECTED
    ).exclude(connection_name__in=besides)
    return list(events.values_list("reason", flat=True))


def timeline_of(identities: list[AgentIdentity]) -> dict[str, Counter]:
    """Per connection name, how many events of each kind the timeline holds."""
    kinds: dict[str, Counter] = {}
    for name, kind in AgentConnectionEvent.objects.filter(identity__in=identities).values_list(
        "connection_name", "kind"
    ):
        kinds.setdefault(name, Counter())[kind] += 1
    return kinds


def envelope_status(app: Replica, token: str, identity: AgentIdentity) -> str:
    response = requests.post(
        f"{app.url}/api/agents/get_connection/",
        json={"instance_id": str(identity.uuid)},
        headers={"Authorization": f"Token {token}"},
        timeout=(5, 60),
    )
    assert response.status_code == 200, response.text
    return response.json()["connection"]["connection_status"]


def broker_lists_user(login: str) -> bool:
    return any(c.get("user") == login for c in management_get("connections").json())


def test_two_apps_and_two_observers_share_snapshots_record_once_and_hand_over(
    fleet, redis_cache, tmp_path
):
    env = common_environment(redis_cache)
    identities = [identity for identity, _, _ in fleet["agents"]]
    proxy = CountingProxy(MANAGEMENT)
    with proxy.serving(), running_replicas(tmp_path) as replicas:
        # given two app instances reaching the management API through the proxy, and two
        # observers reaching the broker directly
        app_env = {**env, "RABBITMQ_MANAGEMENT_URL": proxy.url}
        apps = [replicas.start_app(f"app-{n}", env=app_env) for n in (1, 2)]
        observers = [replicas.start_observer(f"observer-{n}", env=env) for n in (1, 2)]
        for app in apps:
            replicas.wait_until_serving(app)
        first_active = wait_until(
            lambda: active_observer(observers),
            timeout=DEADLINE,
            message="one observer holds the lease and has reconciled",
        )
        standby = next(o for o in observers if o is not first_active)

        # when many threads poll the stats on both apps for ten TTLs, while real agent
        # connections open and close
        started = time.monotonic()
        churn: dict[str, int] = {}
        churner = threading.Thread(
            target=lambda: churn.update(made=churn_connections(fleet, rounds=ROUNDS))
        )
        churner.start()
        answers = poll_stats(apps, fleet["support_token"], seconds=POLL_WINDOW_SECONDS)
        ended = time.monotonic()
        churner.join(timeout=DEADLINE)

        # then every poll was answered, by both apps, and the broker saw at most one
        # connections listing per TTL from all four workers together
        assert answers and {status for _, status in answers} == {200}
        assert {name for name, _ in answers} == {"app-1", "app-2"}
        listings = proxy.calls_to("/api/connections", since=started, until=ended)
        elapsed = ended - started
        print(f"{len(answers)} polls in {elapsed:.1f} s; {len(listings)} connections listings")
        assert 1 <= len(listings) <= elapsed / TTL + 1

        # and every connection is in the timeline once: one connect, one disconnect
        made = churn["made"]
        assert made == AGENTS * ROUNDS
        timeline = wait_until(
            lambda: (
                kinds
                if len(kinds := timeline_of(identities)) == made
                and all(c[DISCONNECTED] for c in kinds.values())
                else None
            ),
            timeout=DEADLINE,
            message=f"{made} connections connected and disconnected in the timeline",
        )
        for name, kinds in timeline.items():
            assert kinds == {CONNECTED: 1, DISCONNECTED: 1}, name
        # and only one observer was ever active: the standby never took the lease
        assert lease().lease_holder.split(":")[1] == str(first_active.pid)
        assert " is active" in first_active.output()
        assert " is active" not in standby.output()

        # when the active observer is killed, and an agent connects before anyone observes
        killed_at = datetime.now(UTC)
        first_active.process.send_signal(signal.SIGKILL)
        first_active.process.wait(timeout=30)
        last_expiry = lease().lease_expires_at
        gap_identity, gap_login, gap_queue = fleet["agents"][0]
        gap_client, _ = connect_agent(
            vhost=fleet["vhost"], login=gap_login, passcode=fleet["owner_token"]
        )
        try:
            subscribe_like_agent(gap_client, gap_queue)

            # then the standby takes the lease once it expired, within the bound
            taken = wait_until(
                lambda: (s := lease()) and s.lease_holder and holder_pid(s) == standby.pid and s,
                timeout=DEADLINE,
                message="the standby holds the lease",
            )
            handover = (taken.lease_acquired_at - killed_at).total_seconds()
            print(f"handover {handover:.1f} s after the kill (bound {HANDOVER_BOUND} s)")
            assert taken.lease_acquired_at >= last_expiry
            assert handover < HANDOVER_BOUND + HANDOVER_SLACK

            # and it reconciled on taking over: the connection made while nobody observed
            # is recorded, and the envelope says the agent is connected
            wait_until(
                lambda: (at := lease().last_reconciled_at) and at >= taken.lease_acquired_at,
                timeout=DEADLINE,
                message="the new active observer reconciled",
            )
            assert broker_lists_user(gap_login)
            gap_reasons = wait_until(
                lambda: connected_reasons(gap_identity, besides=set(timeline)),
                timeout=DEADLINE,
                message="the connection made during the handover is recorded",
            )
            assert gap_reasons == ["found_at_reconcile"]
            assert envelope_status(apps[0], fleet["owner_token"], gap_identity) in {
                "online",
                "healthy",
            }

            # and it consumes the broker's events: a connection after the handover
            late_identity, late_login, late_queue = fleet["agents"][1]
            late_client, _ = connect_agent(
                vhost=fleet["vhost"], login=late_login, passcode=fleet["owner_token"]
            )
            try:
                subscribe_like_agent(late_client, late_queue)
                wait_until(
                    lambda: (
                        envelope_status(apps[1], fleet["owner_token"], late_identity)
                        in {"online", "healthy"}
                    ),
                    timeout=DEADLINE,
                    message="the envelope shows the agent connected after the handover",
                )
                assert connected_reasons(late_identity, besides=set(timeline)) == ["opened"]
            finally:
                late_client.disconnect()
        finally:
            gap_client.disconnect()
        assert " is active" in standby.output()
        assert standby.process.poll() is None and all(a.process.poll() is None for a in apps)

    # then a clean stop (SIGTERM) gave the lease up
    assert lease().lease_holder == ""
    assert all(r.process.returncode is not None for r in replicas.started)
    assert standby.process.returncode == 0
