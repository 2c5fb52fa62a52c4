"""The serving phase: many pollers against the shipped server, side by side in one run.

At each size: 32 pollers (wrk) against the app with the snapshot shared through Redis
and the broker behind the counting proxy, accepting gzip (as requests and httpx do) and
not; then the same gunicorn configuration serving a real answer captured in the run as
static bytes (bench/static_app.py), the floor of moving them. Once, at the first size:
the management API hung (a listener that never answers) while the pollers ask and three
agents make database-only calls; and two replicas sharing Redis behind one counting
proxy, the pollers split between them.
"""

import argparse
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from bench.access_log import (
    AccessLine,
    AnswerSummary,
    max_starts_within,
    read_access_lines,
    summarize_answers,
)
from bench.hung import HungListener
from bench.load import (
    CountingProxy,
    LoadResult,
    ProxiedCall,
    count_log_lines,
    run_wrk,
    summarize_load,
)
from bench.probes import ENDPOINT_PATH, percentile
from bench.server import APP, READINESS_PATH, Gunicorn
from marketplace.models import AgentIdentity

GZIP_HEADER = "Accept-Encoding: gzip, deflate"
SNAPSHOT_CALL = "/api/queues"
GUNICORN_TIMEOUT = 120
HTTP_TIMEOUT = 120.0
# A cold snapshot at 10,000 agents takes seconds: the warm-up waits for 200s this long.
WARM_UP_SECONDS = 180.0
# gunicorn writes a request's access-log line after its answer: let the last ones land.
LOG_SETTLE_SECONDS = 0.5
# The agents' database-only calls measured while the broker hangs.
# Each as (method, path); the POSTs send the agent's instance_id.
AGENT_CALLS = {
    "heartbeat": ("POST", "/api/agents/record_heartbeat/"),
    "envelope": ("POST", "/api/agents/get_connection/"),
    "identity list": ("GET", "/api/marketplace-site-agent-identities/"),
}
STATIC_APP = "bench.static_app:application"


@dataclass(frozen=True)
class PollRun:
    """One wrk run: what the pollers saw, what the server logged, what the broker got."""

    label: str
    accepts_gzip: bool
    load: LoadResult
    answers: AnswerSummary
    max_snapshots_per_ttl: int


@dataclass(frozen=True)
class AgentCall:
    name: str
    status: int
    seconds: float


@dataclass(frozen=True)
class CallSummary:
    name: str
    calls: int
    failures: int
    p50: float
    p99: float
    slowest: float
    # The same calls' p99 inside the worker (access log): without the client's own wait
    # for the CPU on a busy machine.
    worker_p99: float | None = None


@dataclass(frozen=True)
class HungBrokerResult:
    """Stats pollers and database-only calls with the management API hung."""

    stats: LoadResult
    stats_answers: AnswerSummary
    agent_calls: list[CallSummary]
    broker_connections: int


@dataclass(frozen=True)
class SnapshotCount:
    snapshots: int
    max_per_ttl: int
    shortest_gap: float | None


@dataclass(frozen=True)
class ReplicasResult:
    """Two app instances sharing Redis behind one counting proxy."""

    runs: list[LoadResult]
    snapshots: SnapshotCount
    seconds: float
    ttl: float


@dataclass
class ServingSize:
    """Everything the serving phase measured at one fleet size."""

    agents: int
    setup_seconds: dict[str, float] = field(default_factory=dict)
    app: list[PollRun] = field(default_factory=list)
    static: list[PollRun] = field(default_factory=list)
    hung: HungBrokerResult | None = None
    replicas: ReplicasResult | None = None
    notes: list[str] = field(default_factory=list)

    def cost_ratio(self, *, accepts_gzip: bool) -> float | None:
        """How many times the static body's cost a shared answer costs (same encoding)."""
        app = next((run for run in self.app if run.accepts_gzip == accepts_gzip), None)
        static = next((run for run in self.static if run.accepts_gzip == accepts_gzip), None)
        if app is None or static is None:
            return None
        return compute_cost_ratio(app.load, static.load)


def compute_cost_ratio(app: LoadResult, static: LoadResult) -> float:
    """Server time per answer of the app over that of the static body, under the same
    closed-loop load (wrk keeps N connections busy, so time per answer = 1 / rate)."""
    if app.requests_per_second <= 0:
        return float("inf")
    return static.requests_per_second / app.requests_per_second


def count_snapshots(calls: Sequence[ProxiedCall], *, ttl: float) -> SnapshotCount:
    """Snapshots the broker served (one queue listing each) and how close they came."""
    snapshots = sorted(
        (call for call in calls if call.path == SNAPSHOT_CALL), key=lambda call: call.started
    )
    gaps = [
        following.started - previous.finished
        for previous, following in itertools.pairwise(snapshots)
    ]
    return SnapshotCount(
        snapshots=len(snapshots),
        max_per_ttl=max_starts_within([call.started for call in snapshots], window=ttl),
        shortest_gap=min(gaps, default=None),
    )


def summarize_calls(
    calls: Sequence[AgentCall], lines: Sequence[AccessLine] = ()
) -> list[CallSummary]:
    """p50/p99/slowest of each kind of call, failures (non-2xx) counted apart, and their
    p99 inside the worker from the access `lines` of their path."""
    summaries = []
    for name in dict.fromkeys(call.name for call in calls):
        chosen = [call for call in calls if call.name == name]
        seconds = [call.seconds for call in chosen]
        in_worker = [line.seconds for line in lines if line.path == AGENT_CALLS[name][1]]
        summaries.append(
            CallSummary(
                name=name,
                calls=len(chosen),
                failures=sum(1 for call in chosen if not 200 <= call.status < 300),
                p50=percentile(seconds, 0.5),
                p99=percentile(seconds, 0.99),
                slowest=max(seconds),
                worker_p99=percentile(in_worker, 0.99) if in_worker else None,
            )
        )
    return summaries


@dataclass(frozen=True)
class AgentCredentials:
    token: str
    identity_uuid: str


def pick_agent_credentials() -> AgentCredentials:
    """An agent of the fleet and its owner's token (owners make the agents' writes)."""
    identity = AgentIdentity.objects.select_related("created_by").order_by("name").first()
    if identity is None:
        raise RuntimeError("the bench fleet has no agent")
    token, _ = Token.objects.get_or_create(user=identity.created_by)
    return AgentCredentials(token=token.key, identity_uuid=str(identity.uuid))


def measure_serving(
    args: argparse.Namespace,
    agents: int,
    *,
    env: dict[str, str],
    token: str,
    log_dir: Path,
    with_outages: bool,
    say: Callable[[str], None],
) -> ServingSize:
    """The serving phase at one fleet size (the fleet is in place)."""
    result = ServingSize(agents=agents)
    _flush_cache(args.load_cache_url)
    proxy = CountingProxy(settings.RABBITMQ_MANAGEMENT_URL)
    app_env = _shared_env(args, env, management_url=proxy.url)
    static_dir = log_dir / f"static-{agents}"
    static_dir.mkdir(exist_ok=True)
    access_log = log_dir / f"access-{agents}-serving.log"
    with (
        proxy.serving(),
        _gunicorn(args, app_env, log_dir / f"gunicorn-{agents}-serving.log", access_log) as app,
    ):
        _warm_up(app.base_url, token, answers=2 * args.workers)
        for accepts_gzip in (True, False):
            run = _poll(args, app.base_url, token, proxy, access_log, accepts_gzip, "shared")
            say(f"   {_describe_run(run)}")
            result.app.append(run)
        for name, accepts_gzip in (("gzip", True), ("identity", False)):
            body, encoding = capture_answer(app.base_url, token, accepts_gzip=accepts_gzip)
            (static_dir / f"{name}.body").write_bytes(body)
            (static_dir / f"{name}.encoding").write_text(encoding)
    static_log = log_dir / f"access-{agents}-static.log"
    with _gunicorn(
        args,
        {**env, "BENCH_STATIC_DIR": str(static_dir)},
        log_dir / f"gunicorn-{agents}-static.log",
        static_log,
        app_name=STATIC_APP,
    ) as static:
        for accepts_gzip in (True, False):
            run = _poll(args, static.base_url, token, None, static_log, accepts_gzip, "static")
            say(f"   {_describe_run(run)}")
            result.static.append(run)
    if with_outages:
        result.hung = measure_hung_broker(args, env, token=token, log_dir=log_dir, say=say)
        result.replicas = measure_replicas(args, env, token=token, log_dir=log_dir, say=say)
    # Other work on this machine skews every figure; the note says how busy it was.
    result.notes.append(f"machine load (1 min) after this size: {os.getloadavg()[0]:.1f}")
    return result


def measure_hung_broker(
    args: argparse.Namespace,
    env: dict[str, str],
    *,
    token: str,
    log_dir: Path,
    say: Callable[[str], None],
) -> HungBrokerResult:
    """The pollers and three agents' database-only calls, the management API hung."""
    _flush_cache(args.load_cache_url)
    agent = pick_agent_credentials()
    access_log = log_dir / "access-hung.log"
    with HungListener() as hung:
        # Three agents call back to back, far above a real agent's pace: the per-user write
        # throttle (300/min) would answer most of them 429 and time it, not the calls.
        hung_env = {
            **_shared_env(args, env, management_url=hung.url),
            "AGENT_WRITE_THROTTLE_RATE": "1000000/min",
        }
        with _gunicorn(args, hung_env, log_dir / "gunicorn-hung.log", access_log) as server:
            for name in AGENT_CALLS:  # each thread opens its database connection once
                call_as_agent(server.base_url, agent, name)
            skip = count_log_lines(access_log)
            outputs: list[str] = []
            pollers = threading.Thread(
                target=lambda: outputs.append(
                    run_wrk(
                        server.base_url,
                        token,
                        connections=args.load_connections,
                        seconds=args.serving_seconds,
                        headers=[GZIP_HEADER],
                    )
                )
            )
            pollers.start()
            deadline = time.monotonic() + 60
            while hung.count_accepted() == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            calls: list[AgentCall] = []
            callers = [
                threading.Thread(
                    target=_call_while, args=(server.base_url, agent, name, pollers, calls)
                )
                for name in AGENT_CALLS
            ]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join()
            pollers.join()
            accepted = hung.count_accepted()
            # The answers of the run; those released by the close below are not.
            time.sleep(LOG_SETTLE_SECONDS)
            stop = count_log_lines(access_log)
            # Waiting requests end at once (503) when the "broker" drops them.
            hung.close()
        time.sleep(LOG_SETTLE_SECONDS)
    stats = summarize_load(
        outputs[0],
        connections=args.load_connections,
        seconds=args.serving_seconds,
        calls=[],
        ttl=args.load_ttl,
        access_log=access_log,
        skip_log_lines=skip,
    )
    result = HungBrokerResult(
        stats=stats,
        stats_answers=summarize_answers(
            read_access_lines(access_log, skip=skip, stop=stop), path=ENDPOINT_PATH
        ),
        agent_calls=summarize_calls(calls, read_access_lines(access_log, skip=skip, stop=stop)),
        broker_connections=accepted,
    )
    say(
        f"   hung broker: stats p50 {stats.latency_p50:.3f}s p99 {stats.latency_p99:.3f}s max "
        f"{stats.latency_max:.3f}s; "
        + ", ".join(f"{c.name} p99 {c.p99:.3f}s ({c.failures} failed)" for c in result.agent_calls)
    )
    return result


def measure_replicas(
    args: argparse.Namespace,
    env: dict[str, str],
    *,
    token: str,
    log_dir: Path,
    say: Callable[[str], None],
) -> ReplicasResult:
    """Two gunicorns sharing Redis behind one counting proxy, the pollers split."""
    _flush_cache(args.load_cache_url)
    proxy = CountingProxy(settings.RABBITMQ_MANAGEMENT_URL)
    shared_env = _shared_env(args, env, management_url=proxy.url)
    logs = [log_dir / f"access-replica-{number}.log" for number in (1, 2)]
    split = [args.load_connections // 2, args.load_connections - args.load_connections // 2]
    with (
        proxy.serving(),
        _gunicorn(args, shared_env, log_dir / "gunicorn-replica-1.log", logs[0]) as first,
        _gunicorn(args, shared_env, log_dir / "gunicorn-replica-2.log", logs[1]) as second,
    ):
        for server in (first, second):
            _warm_up(server.base_url, token, answers=2 * args.workers)
        skips = [count_log_lines(log) for log in logs]
        before = len(proxy.calls)
        outputs: dict[int, str] = {}
        pollers = [
            threading.Thread(
                target=lambda number=number, server=server: outputs.__setitem__(
                    number,
                    run_wrk(
                        server.base_url,
                        token,
                        connections=split[number],
                        seconds=args.serving_seconds,
                        headers=[GZIP_HEADER],
                    ),
                )
            )
            for number, server in enumerate((first, second))
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        calls = proxy.calls[before:]
        time.sleep(LOG_SETTLE_SECONDS)
    runs = [
        summarize_load(
            outputs[number],
            connections=split[number],
            seconds=args.serving_seconds,
            calls=[],
            ttl=args.load_ttl,
            access_log=logs[number],
            skip_log_lines=skips[number],
        )
        for number in (0, 1)
    ]
    result = ReplicasResult(
        runs=runs,
        snapshots=count_snapshots(calls, ttl=args.load_ttl),
        seconds=args.serving_seconds,
        ttl=args.load_ttl,
    )
    say(
        f"   two replicas: {result.snapshots.snapshots} snapshots, at most "
        f"{result.snapshots.max_per_ttl} per {args.load_ttl:g} s; "
        + ", ".join(
            f"{run.requests_per_second:.1f} req/s p99 {run.latency_p99:.3f}s" for run in runs
        )
    )
    return result


def call_as_agent(base_url: str, agent: AgentCredentials, name: str) -> AgentCall:
    """One database-only call an agent makes, timed end to end."""
    method, path = AGENT_CALLS[name]
    started = time.perf_counter()
    response = requests.request(
        method,
        base_url + path,
        json={"instance_id": agent.identity_uuid} if method == "POST" else None,
        headers={"Authorization": f"Token {agent.token}"},
        timeout=HTTP_TIMEOUT,
    )
    return AgentCall(name, response.status_code, time.perf_counter() - started)


def capture_answer(base_url: str, token: str, *, accepts_gzip: bool) -> tuple[bytes, str]:
    """The stats answer's bytes as sent on the wire, and its Content-Encoding."""
    headers = {
        "Authorization": f"Token {token}",
        "Accept-Encoding": "gzip, deflate" if accepts_gzip else "identity",
    }
    deadline = time.monotonic() + WARM_UP_SECONDS
    while True:
        with requests.get(
            base_url + ENDPOINT_PATH, headers=headers, stream=True, timeout=HTTP_TIMEOUT
        ) as response:
            if response.status_code == 200:
                body = response.raw.read(decode_content=False)
                return body, response.headers.get("Content-Encoding", "")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"no 200 from the stats to capture: {response.status_code}")
        time.sleep(0.5)


def _call_while(
    base_url: str,
    agent: AgentCredentials,
    name: str,
    pollers: threading.Thread,
    into: list[AgentCall],
) -> None:
    while pollers.is_alive():
        into.append(call_as_agent(base_url, agent, name))


def _poll(
    args: argparse.Namespace,
    base_url: str,
    token: str,
    proxy: CountingProxy | None,
    access_log: Path,
    accepts_gzip: bool,
    label: str,
) -> PollRun:
    skip = count_log_lines(access_log)
    before = len(proxy.calls) if proxy is not None else 0
    output = run_wrk(
        base_url,
        token,
        connections=args.load_connections,
        seconds=args.serving_seconds,
        headers=[GZIP_HEADER] if accepts_gzip else [],
    )
    time.sleep(LOG_SETTLE_SECONDS)
    calls = proxy.calls[before:] if proxy is not None else []
    load = summarize_load(
        output,
        connections=args.load_connections,
        seconds=args.serving_seconds,
        calls=calls,
        ttl=args.load_ttl,
        access_log=access_log,
        skip_log_lines=skip,
    )
    return PollRun(
        label=label,
        accepts_gzip=accepts_gzip,
        load=load,
        answers=summarize_answers(read_access_lines(access_log, skip=skip), path=ENDPOINT_PATH),
        max_snapshots_per_ttl=count_snapshots(calls, ttl=args.load_ttl).max_per_ttl,
    )


def _describe_run(run: PollRun) -> str:
    age = run.answers.max_snapshot_age
    return (
        f"{run.label} {'gzip' if run.accepts_gzip else 'identity'}: "
        f"{run.load.requests_per_second:.1f} req/s p50 {run.load.latency_p50:.3f}s "
        f"p99 {run.load.latency_p99:.3f}s bytes {run.answers.median_body_bytes} "
        f"max age {'-' if age is None else f'{age:.3f}s'} snapshots {run.load.snapshots} "
        f"(at most {run.max_snapshots_per_ttl} per TTL)"
    )


def _warm_up(base_url: str, token: str, *, answers: int) -> None:
    """Ask until `answers` 200s came (each worker's first request opens its connections;
    a cold snapshot at scale takes seconds), kept out of the measured figures."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    deadline = time.monotonic() + WARM_UP_SECONDS
    good = 0
    while good < answers:
        if session.get(base_url + ENDPOINT_PATH, timeout=HTTP_TIMEOUT).status_code == 200:
            good += 1
        elif time.monotonic() >= deadline:
            raise RuntimeError(f"the stats did not answer 200 within {WARM_UP_SECONDS:.0f} s")
        else:
            time.sleep(0.5)


def _shared_env(
    args: argparse.Namespace, env: dict[str, str], *, management_url: str
) -> dict[str, str]:
    return {
        **env,
        "CACHE_URL": args.load_cache_url,
        "BROKER_SNAPSHOT_TTL": str(args.load_ttl),
        "RABBITMQ_MANAGEMENT_URL": management_url,
    }


def _gunicorn(
    args: argparse.Namespace,
    env: dict[str, str],
    log_path: Path,
    access_log: Path,
    *,
    app_name: str | None = None,
) -> Gunicorn:
    return Gunicorn(
        env,
        workers=args.workers,
        threads=args.threads,
        timeout=GUNICORN_TIMEOUT,
        log_path=log_path,
        access_log=access_log,
        app=app_name or APP,
        # The static app answers any path; the app's readiness path needs no broker.
        readiness_path="/" if app_name else READINESS_PATH,
    )


def _flush_cache(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
