"""The benchmark run itself, once Django is set up against the bench database."""

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bench import broker as bench_broker
from bench import fleet
from bench.inprocess import compare_alternatives, count_request_costs, profile_read_path
from bench.load import (
    CountingProxy,
    LoadResult,
    count_log_lines,
    require_wrk,
    run_wrk,
    summarize_load,
)
from bench.probes import EndpointProbe, FloorProbe, Sample, UpstreamProbe, median, percentile
from bench.report import Result, Timing, render_results, write_results
from bench.server import REPO, Gunicorn, server_env

T = TypeVar("T")

MIN_UPSTREAM_SAMPLES = 3
# One per gunicorn worker (sync workers take turns accepting).
WARMUP_REQUESTS = 2
CONNECTIONS_LISTED_TIMEOUT = 60.0
HTTP_TIMEOUT = 120.0
GUNICORN_TIMEOUT = 120
# Seconds the broker may take to settle after a growth step.
SETTLE_TIMEOUT = 90.0
# Each alternative runs the whole fleet twice per side: enough for multi-x differences.
ALTERNATIVE_REPEATS = 3
# The ratio targets are defined at this size: profile it as well as the largest.
PROFILE_ALSO_AT = 1000
# The cached server is context, not a compared probe: fewer samples keep the run short.
CACHED_SAMPLES = 5
# Long enough that every measured request of the cached server hits the shared snapshot.
CACHED_SNAPSHOT_TTL = 600
# Sockets the broker needs beyond our client connections (management, tests, slack).
SOCKET_MARGIN = 100


def cleanup_only() -> int:
    api = _management_api()
    vhosts, users = bench_broker.delete_bench_objects(api)
    print(f"deleted {vhosts} bench vhosts and {users} bench users", flush=True)
    return 0


def run_benchmark(args: argparse.Namespace, *, command: str) -> int:
    started = time.monotonic()
    if args.load_seconds and args.load_at in args.agents:
        require_wrk()
    # The in-process profile runs with the GC tuning the app's server processes apply.
    from agentstats.wsgi import tune_garbage_collector

    tune_garbage_collector()
    logging.getLogger("pika").setLevel(logging.WARNING)
    api = _management_api()
    node = api.get("nodes", columns="name,fd_total,sockets_total")[0]
    if args.connections + SOCKET_MARGIN > node["sockets_total"]:
        raise SystemExit(
            f"the broker allows {node['sockets_total']} sockets (fd limit {node['fd_total']}); "
            f"{args.connections} client connections need more: raise its open-file limit "
            "(e.g. `ulimit -n 65536` in the rabbitmq-server environment) and restart it, or "
            "pass fewer --connections"
        )
    leftovers = bench_broker.delete_bench_objects(api)
    if any(leftovers):
        print(f"removed leftovers of an earlier run: {leftovers[0]} vhosts, {leftovers[1]} users")
    call_command("flush", interactive=False, verbosity=0)
    token = fleet.ensure_support_token()
    clients = bench_broker.ClientConnections(api.host)
    log_dir = Path(tempfile.mkdtemp(prefix="agentstats-bench-"))
    results: list[Result] = []
    environment = _describe_environment(args, api, node)

    def publish(*, is_complete: bool) -> None:
        # Written after every step, so an interrupted run still leaves what it measured.
        block = render_results(
            results,
            command=command,
            environment=environment,
            wall_seconds=time.monotonic() - started,
            is_complete=is_complete,
        )
        write_results(args.output, block, title="Benchmarks")

    try:
        for agents in args.agents:
            _run_size(
                args,
                agents,
                api=api,
                clients=clients,
                token=token,
                log_dir=log_dir,
                results=results,
                publish=lambda: publish(is_complete=False),
            )
    finally:
        clients.close()
        if not args.keep_broker:
            vhosts, users = bench_broker.delete_bench_objects(api)
            print(f"cleanup: deleted {vhosts} bench vhosts and {users} bench users", flush=True)
    publish(is_complete=True)
    print(f"wrote {args.output}; gunicorn logs in {log_dir}", flush=True)
    return 0


def _run_size(
    args: argparse.Namespace,
    agents: int,
    *,
    api: bench_broker.ManagementAPI,
    clients: bench_broker.ClientConnections,
    token: str,
    log_dir: Path,
    results: list[Result],
    publish: Callable[[], None],
) -> None:
    _say(f"== {agents} agents: growing the fleet")
    setup: dict[str, float] = {}
    growth = _stopwatch(setup, "db", lambda: fleet.grow_fleet(agents, shape=_shape(args)))
    _stopwatch(
        setup,
        "broker",
        lambda: bench_broker.add_broker_fleet(
            api, vhosts=growth.new_vhosts, subscriptions=growth.new_subscriptions
        ),
    )
    _stopwatch(
        setup,
        "messages",
        lambda: bench_broker.publish_messages(
            api, growth.new_subscriptions, every=args.messages_every, count=args.messages
        ),
    )
    subscriptions = fleet.list_broker_subscriptions()

    def reconnect() -> None:
        clients.close()
        clients.open(bench_broker.pick_spread(subscriptions, args.connections))
        clients.wait_until_listed(api, timeout=CONNECTIONS_LISTED_TIMEOUT)

    _stopwatch(setup, "connections", reconnect)
    settle = bench_broker.wait_until_settled(api, timeout=SETTLE_TIMEOUT)
    _say(
        "   setup s: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in setup.items())
        + "; GET /api/queues while settling: "
        + ", ".join(f"{seconds:.2f}" for seconds in settle)
    )
    totals = bench_broker.broker_totals(api)
    costs = count_request_costs(token)
    notes: list[str] = []
    if costs.status != 200:
        notes.append(
            f"the in-process request that counts queries answered {costs.status}: "
            f"{costs.body[:160].decode(errors='replace')}"
        )
        _say("   " + notes[-1])
    # This process's environment already names the bench database and the secret key.
    env = server_env({"ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "false", "BROKER_SNAPSHOT_TTL": "0"})
    with Gunicorn(
        env,
        workers=args.workers,
        timeout=GUNICORN_TIMEOUT,
        log_path=log_dir / f"gunicorn-{agents}.log",
    ) as server:
        samples = _measure_interleaved(args, server.base_url, token)
        peak_rss = server.worker_peak_rss_kib()
        # Other work on this machine skews every probe; the note says how busy it was.
        load_average = os.getloadavg()[0]
    cached_env = {**env, "BROKER_SNAPSHOT_TTL": str(CACHED_SNAPSHOT_TTL)}
    with Gunicorn(
        cached_env,
        workers=args.workers,
        timeout=GUNICORN_TIMEOUT,
        log_path=log_dir / f"gunicorn-{agents}-cached.log",
    ) as server:
        cached = _measure_endpoint_only(server.base_url, token)
    messages = sum(
        args.messages
        for sub in subscriptions
        if args.messages_every and sub.index % args.messages_every == 0
    )
    result = Result(
        agents=agents,
        providers=_shape(args).count_providers(agents),
        services=agents * len(fleet.SERVICE_NAMES),
        subscriptions=len(subscriptions),
        queues=len(subscriptions),
        messages=messages,
        connections=len(clients.usernames),
        broker_totals=totals,
        setup_seconds=setup,
        endpoint=_timing(samples["endpoint"]),
        endpoint_cached=_timing(cached),
        floor=_timing(samples["floor"]),
        upstream=_timing(samples["upstream"]),
        rows_queries=costs.rows_queries,
        request_queries=costs.request_queries,
        broker_calls=costs.broker_calls,
        worker_peak_rss_kib=peak_rss,
        load_average=load_average,
        settle_seconds=settle,
        notes=notes,
    )
    _say(
        f"   endpoint {result.endpoint.median:.3f}s floor {result.floor.median:.3f}s "
        f"upstream {result.upstream.median:.3f}s [{result.upstream.samples}] "
        f"endpoint/floor {result.endpoint_over_floor:.2f}x "
        f"upstream/endpoint {result.upstream_over_endpoint:.1f}x "
        f"queries {costs.rows_queries}/{costs.request_queries} "
        f"broker calls {len(costs.broker_calls)} "
        f"bytes {result.endpoint.size:,} rss {result.peak_rss_mib:.0f} MiB"
    )
    results.append(result)
    publish()
    if agents == args.agents[-1] or agents == PROFILE_ALSO_AT:
        _say("   profiling the read path in-process")
        result.profile = profile_read_path(repeats=args.profile_repeats)
        result.alternatives = compare_alternatives(repeats=ALTERNATIVE_REPEATS)
        for stage in result.profile:
            _say(f"   {stage.seconds:8.3f}s  {stage.name}  {stage.note}")
        for alt in result.alternatives:
            _say(
                f"   {alt.name}: before {alt.before_seconds:.3f}s app "
                f"{alt.app_seconds:.3f}s identical={alt.identical}"
            )
        publish()
    if args.load_seconds and agents == args.load_at:
        _say(f"   load run: {args.load_connections} pollers for {args.load_seconds} s")
        result.load = _run_load(args, env, token=token, log_dir=log_dir, agents=agents)
        _say(
            f"   {result.load.requests_per_second:.1f} req/s p50 {result.load.latency_p50:.3f}s "
            f"p99 {result.load.latency_p99:.3f}s errors "
            f"{result.load.non_2xx + result.load.socket_errors} snapshots "
            f"{result.load.snapshots} (shortest gap {result.load.shortest_gap})"
        )
        publish()


def _run_load(
    args: argparse.Namespace, env: dict[str, str], *, token: str, log_dir: Path, agents: int
) -> LoadResult:
    """wrk against gunicorn with the snapshot shared through Redis, the broker behind a
    counting proxy."""
    import redis

    redis.Redis.from_url(args.load_cache_url, socket_connect_timeout=5).flushdb()
    proxy = CountingProxy(settings.RABBITMQ_MANAGEMENT_URL)
    access_log = log_dir / f"access-{agents}-load.log"
    load_env = {
        **env,
        "CACHE_URL": args.load_cache_url,
        "BROKER_SNAPSHOT_TTL": str(args.load_ttl),
        "RABBITMQ_MANAGEMENT_URL": proxy.url,
    }
    with (
        proxy.serving(),
        Gunicorn(
            load_env,
            workers=args.workers,
            timeout=GUNICORN_TIMEOUT,
            log_path=log_dir / f"gunicorn-{agents}-load.log",
            access_log=access_log,
        ) as server,
    ):
        # Warm-up (each worker's first request opens its database connection), kept out
        # of the access-log figures.
        warmup = EndpointProbe(server.base_url, token, timeout=HTTP_TIMEOUT)
        for _ in range(2 * args.workers):
            warmup.measure()
        time.sleep(0.5)  # the access log is written after each response
        skip = count_log_lines(access_log)
        before = len(proxy.calls)
        output = run_wrk(
            server.base_url, token, connections=args.load_connections, seconds=args.load_seconds
        )
        calls = proxy.calls[before:]
    (log_dir / f"broker-calls-{agents}-load.json").write_text(
        json.dumps([dataclasses.asdict(call) for call in calls], indent=1)
    )
    return summarize_load(
        output,
        connections=args.load_connections,
        seconds=args.load_seconds,
        calls=calls,
        ttl=args.load_ttl,
        access_log=access_log,
        skip_log_lines=skip,
    )


def _measure_interleaved(
    args: argparse.Namespace, base_url: str, token: str
) -> dict[str, list[Sample]]:
    auth = (settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD)
    management = settings.RABBITMQ_MANAGEMENT_URL
    endpoint = EndpointProbe(base_url, token, timeout=HTTP_TIMEOUT)
    floor = FloorProbe(management, auth, timeout=HTTP_TIMEOUT)
    upstream = UpstreamProbe(management, auth, timeout=HTTP_TIMEOUT)
    probes: list[tuple[str, Callable[[], Sample]]] = [
        ("endpoint", endpoint.measure),
        ("floor", floor.measure),
        ("upstream", upstream.measure),
    ]
    for _ in range(WARMUP_REQUESTS):
        endpoint.measure()
    floor.measure()
    samples: dict[str, list[Sample]] = {name: [] for name, _ in probes}
    upstream_spent = 0.0
    try:
        for round_number in range(args.requests):
            shift = round_number % len(probes)
            measured = []
            for name, measure in probes[shift:] + probes[:shift]:
                if name == "upstream" and not _may_run_upstream(
                    args, samples["upstream"], upstream_spent
                ):
                    continue
                sample = measure()
                samples[name].append(sample)
                measured.append(f"{name} {sample.seconds:.3f}s {sample.error}".rstrip())
                if name == "upstream":
                    upstream_spent += sample.seconds
            _say(f"   round {round_number + 1}/{args.requests}: " + ", ".join(measured))
    finally:
        floor.close()
    return samples


def _measure_endpoint_only(base_url: str, token: str) -> list[Sample]:
    endpoint = EndpointProbe(base_url, token, timeout=HTTP_TIMEOUT)
    for _ in range(WARMUP_REQUESTS):
        endpoint.measure()
    return [endpoint.measure() for _ in range(CACHED_SAMPLES)]


def _shape(args: argparse.Namespace) -> fleet.FleetShape:
    if args.agents_per_provider:
        return fleet.FleetShape(agents_per_provider=args.agents_per_provider)
    return fleet.FleetShape(providers=args.providers)


def _may_run_upstream(args: argparse.Namespace, done: list[Sample], spent: float) -> bool:
    if len(done) < MIN_UPSTREAM_SAMPLES:
        return True
    return spent + done[-1].seconds <= args.upstream_budget


def _timing(samples: list[Sample]) -> Timing:
    good = [sample for sample in samples if not sample.error]
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.error:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    seconds = [sample.seconds for sample in good] or [math.nan]
    return Timing(
        median=median(seconds),
        p90=percentile(seconds, 0.9),
        samples=len(good),
        calls=max(sample.calls for sample in samples),
        size=int(median([sample.size for sample in good])) if good else 0,
        errors=errors,
    )


def _management_api() -> bench_broker.ManagementAPI:
    return bench_broker.ManagementAPI(
        settings.RABBITMQ_MANAGEMENT_URL,
        user=settings.RABBITMQ_USER,
        password=settings.RABBITMQ_PASSWORD,
    )


def _describe_environment(
    args: argparse.Namespace, api: bench_broker.ManagementAPI, node: dict[str, object]
) -> list[str]:
    overview = api.get("overview")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    cpu = _cpu_model()
    return [
        f"code: {_describe_revision()}",
        f"machine: {cpu}, {_cpu_count()} cores, Python {platform.python_version()}",
        f"RabbitMQ {overview['rabbitmq_version']} (Erlang {overview['erlang_version']}), "
        f"open-file limit {node['fd_total']}, socket limit {node['sockets_total']}; "
        f"PostgreSQL {postgres}",
        "app: `gunicorn agentstats.wsgi -b 127.0.0.1:<free port> -w 2 --timeout 120` (sync "
        "workers), DATABASE_URL = the bench database, CACHE_URL unset (local memory), other "
        "settings at their defaults (RABBITMQ_SNAPSHOT_READ_TIMEOUT "
        f"{settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT:g} s, GC_THRESHOLDS "
        f"{','.join(map(str, settings.GC_THRESHOLDS))})",
        "fleet: "
        + (
            f"a new provider every {args.agents_per_provider} agents"
            if args.agents_per_provider
            else f"agents spread over {args.providers} providers"
        )
        + " (one owner, hence one vhost, per provider); 4 services, 3 subscriptions with one "
        f"queue each per agent; {args.messages} messages in every {args.messages_every}th queue; "
        f"{args.connections} AMQP client connections (one consumer each) spread over the fleet",
    ]


def _describe_revision() -> str:
    """The commit measured, and whether app code differed from it (others edit the tree)."""
    head = _git("rev-parse", "--short", "HEAD")
    changed = _git("status", "--porcelain", "--", "agentstats", "marketplace", "rmq")
    return f"commit {head}" + (", with uncommitted changes to the app" if changed else "")


def _git(*args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", *args],  # noqa: S607 - git from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return completed.stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def _stopwatch(into: dict[str, float], name: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    into[name] = time.perf_counter() - start
    return result


def _say(message: str) -> None:
    print(message, flush=True)
