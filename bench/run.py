"""The benchmark run itself, once Django is set up against the bench database."""

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.management import call_command

from bench import broker as bench_broker
from bench import fleet
from bench.environment import describe_environment
from bench.inprocess import compare_alternatives, count_request_costs, profile_read_path
from bench.load import (
    CountingProxy,
    LoadResult,
    count_log_lines,
    require_wrk,
    run_wrk,
    summarize_load,
)
from bench.probes import EndpointProbe
from bench.report import Result, render_results, write_results
from bench.sampling import (
    HTTP_TIMEOUT,
    measure_endpoint_only,
    measure_interleaved,
    summarize_timing,
)
from bench.server import Gunicorn, server_env
from bench.serving import ServingSize, measure_serving
from bench.serving_report import END_MARK as SERVING_END_MARK
from bench.serving_report import START_MARK as SERVING_START_MARK
from bench.serving_report import render_serving

T = TypeVar("T")

CONNECTIONS_LISTED_TIMEOUT = 60.0
GUNICORN_TIMEOUT = 120
# Seconds the broker may take to settle after a growth step.
SETTLE_TIMEOUT = 90.0
# Each alternative runs the whole fleet twice per side: enough for multi-x differences.
ALTERNATIVE_REPEATS = 3
# The ratio targets are defined at this size: profile it as well as the largest.
PROFILE_ALSO_AT = 1000
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
    if (args.load_seconds and args.load_at in args.agents) or (
        args.serving_seconds and args.serving_agents
    ):
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
    environment = describe_environment(args, api, node)

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

    serving: list[ServingSize] = []

    def publish_serving(*, is_complete: bool) -> None:
        block = render_serving(
            serving,
            command=command,
            environment=environment,
            wall_seconds=time.monotonic() - started,
            is_complete=is_complete,
            ttl=args.load_ttl,
        )
        write_results(
            args.output,
            block,
            title="Benchmarks",
            start_mark=SERVING_START_MARK,
            end_mark=SERVING_END_MARK,
        )

    endpoint_sizes = [] if args.serving_only else args.agents
    serving_sizes = args.serving_agents if args.serving_seconds else []
    try:
        for agents in sorted({*endpoint_sizes, *serving_sizes}):
            setup = _grow(args, agents, api=api, clients=clients)
            if agents in endpoint_sizes:
                _run_size(
                    args,
                    agents,
                    setup=setup,
                    api=api,
                    clients=clients,
                    token=token,
                    log_dir=log_dir,
                    results=results,
                    publish=lambda: publish(is_complete=False),
                )
            if agents in serving_sizes:
                _say(f"== {agents} agents: serving phase")
                size = measure_serving(
                    args,
                    agents,
                    env=_server_env(),
                    token=token,
                    log_dir=log_dir,
                    with_outages=agents == serving_sizes[0],
                    say=_say,
                )
                size.setup_seconds = setup.seconds
                serving.append(size)
                publish_serving(is_complete=False)
    finally:
        clients.close()
        if not args.keep_broker:
            vhosts, users = bench_broker.delete_bench_objects(api)
            print(f"cleanup: deleted {vhosts} bench vhosts and {users} bench users", flush=True)
    if endpoint_sizes:
        publish(is_complete=True)
    if serving_sizes:
        publish_serving(is_complete=True)
    print(f"wrote {args.output}; gunicorn logs in {log_dir}", flush=True)
    return 0


@dataclasses.dataclass(frozen=True)
class SizeSetup:
    """What growing the fleet to one size took, and the broker's settling after it."""

    seconds: dict[str, float]
    settle: list[float]
    subscriptions: list[fleet.BrokerSubscription]


def _grow(
    args: argparse.Namespace,
    agents: int,
    *,
    api: bench_broker.ManagementAPI,
    clients: bench_broker.ClientConnections,
) -> SizeSetup:
    """Grow the fleet (database, broker, messages) to `agents`, reconnect the clients and
    wait for the broker to settle."""
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
    return SizeSetup(seconds=setup, settle=settle, subscriptions=subscriptions)


def _server_env() -> dict[str, str]:
    # This process's environment already names the bench database and the secret key.
    return server_env({"ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "false", "BROKER_SNAPSHOT_TTL": "0"})


def _run_size(
    args: argparse.Namespace,
    agents: int,
    *,
    setup: SizeSetup,
    api: bench_broker.ManagementAPI,
    clients: bench_broker.ClientConnections,
    token: str,
    log_dir: Path,
    results: list[Result],
    publish: Callable[[], None],
) -> None:
    subscriptions, settle = setup.subscriptions, setup.settle
    totals = bench_broker.broker_totals(api)
    costs = count_request_costs(token)
    notes: list[str] = []
    if costs.status != 200:
        notes.append(
            f"the in-process request that counts queries answered {costs.status}: "
            f"{costs.body[:160].decode(errors='replace')}"
        )
        _say("   " + notes[-1])
    env = _server_env()
    with Gunicorn(
        env,
        workers=args.workers,
        threads=args.threads,
        timeout=GUNICORN_TIMEOUT,
        log_path=log_dir / f"gunicorn-{agents}.log",
    ) as server:
        samples = measure_interleaved(args, server.base_url, token, say=_say)
        peak_rss = server.worker_peak_rss_kib()
        # Other work on this machine skews every probe; the note says how busy it was.
        load_average = os.getloadavg()[0]
    cached_env = {**env, "BROKER_SNAPSHOT_TTL": str(CACHED_SNAPSHOT_TTL)}
    with Gunicorn(
        cached_env,
        workers=args.workers,
        threads=args.threads,
        timeout=GUNICORN_TIMEOUT,
        log_path=log_dir / f"gunicorn-{agents}-cached.log",
    ) as server:
        cached = measure_endpoint_only(server.base_url, token)
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
        setup_seconds=setup.seconds,
        endpoint=summarize_timing(samples["endpoint"]),
        endpoint_cached=summarize_timing(cached),
        floor=summarize_timing(samples["floor"]),
        upstream=summarize_timing(samples["upstream"]),
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
            threads=args.threads,
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


def _shape(args: argparse.Namespace) -> fleet.FleetShape:
    if args.agents_per_provider:
        return fleet.FleetShape(agents_per_provider=args.agents_per_provider)
    return fleet.FleetShape(providers=args.providers)


def _management_api() -> bench_broker.ManagementAPI:
    return bench_broker.ManagementAPI(
        settings.RABBITMQ_MANAGEMENT_URL,
        user=settings.RABBITMQ_USER,
        password=settings.RABBITMQ_PASSWORD,
    )


def _stopwatch(into: dict[str, float], name: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    into[name] = time.perf_counter() - start
    return result


def _say(message: str) -> None:
    print(message, flush=True)
