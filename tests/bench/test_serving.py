"""The serving phase's bookkeeping: the access log, snapshots per TTL, the cost ratio,
the database-only calls, the static body and the generated block."""

import gzip

import pytest

from bench.access_log import (
    max_starts_within,
    parse_access_line,
    read_access_lines,
    summarize_answers,
)
from bench.load import LoadResult, ProxiedCall
from bench.report import END_MARK, START_MARK, write_results
from bench.serving import (
    AgentCall,
    CallSummary,
    HungBrokerResult,
    PollRun,
    ReplicasResult,
    ServingSize,
    SnapshotCount,
    compute_cost_ratio,
    count_snapshots,
    summarize_calls,
)
from bench.serving_report import END_MARK as SERVING_END
from bench.serving_report import START_MARK as SERVING_START
from bench.serving_report import render_serving
from bench.static_app import build_application, choose_variant

STATS = "/api/marketplace-site-agent-connection-stats/"


def load(*, rps: float, p99: float = 0.02, requests: int = 1000, errors: int = 0) -> LoadResult:
    return LoadResult(
        connections=32,
        seconds=20,
        requests=requests,
        requests_per_second=rps,
        latency_p50=p99 / 2,
        latency_p90=p99 * 0.8,
        latency_p99=p99,
        latency_max=p99 * 1.5,
        non_2xx=errors,
        socket_errors=0,
        snapshots=10,
        snapshot_seconds=[],
        shortest_gap=2.1,
        ttl=2.0,
        worker_seconds=[],
        broker_waits={},
        wrk_output="",
    )


def poll(label: str, *, accepts_gzip: bool, rps: float, p99: float = 0.02, per_ttl: int = 1):
    answers = summarize_answers(
        [parse_access_line(f"0.010 200 1000 0.500 gzip {STATS} -")]  # type: ignore[list-item]
    )
    return PollRun(label, accepts_gzip, load(rps=rps, p99=p99), answers, per_ttl)


def test_an_access_line_gives_time_status_wire_bytes_headers_and_path():
    # given a line of bench.server.ACCESS_LOG_FORMAT whose Server-Timing holds spaces
    line = (
        "0.004512 200 183220 1.237 gzip /api/marketplace-site-agent-connection-stats/ "
        'answer;desc=\\"shared\\", snapshot;dur=0.2'
    )

    # when
    parsed = parse_access_line(line)

    # then
    assert parsed is not None
    assert (parsed.seconds, parsed.status, parsed.body_bytes) == (0.004512, 200, 183220)
    assert (parsed.snapshot_age, parsed.content_encoding, parsed.path) == (1.237, "gzip", STATS)
    assert parsed.server_timing == 'answer;desc=\\"shared\\", snapshot;dur=0.2'


def test_missing_headers_read_as_none_and_foreign_lines_are_skipped(tmp_path):
    # given an answer without the new headers (the server before them) and gunicorn's own line
    log = tmp_path / "access.log"
    log.write_text(
        "[2026-12-02 12:00:00 +0000] [1] [INFO] Booting worker\n"
        f"0.200 503 85 - - {STATS} -\n"
        f'0.300 200 2600000 - - {STATS} broker;desc=\\"fetched\\";dur=120.0\n'
    )

    # when
    lines = read_access_lines(log)

    # then
    assert [(line.status, line.snapshot_age, line.content_encoding) for line in lines] == [
        (503, None, ""),
        (200, None, ""),
    ]
    assert read_access_lines(log, skip=2) == lines[1:]
    assert read_access_lines(log, stop=2) == lines[:1]


def test_answer_summary_counts_statuses_encodings_wire_bytes_and_the_oldest_age():
    # given gzip and identity answers of the stats, a 503 and an agent's call
    lines = [
        parse_access_line(text)
        for text in (
            f"0.010 200 1000 0.250 gzip {STATS} -",
            f"0.012 200 3000 1.750 gzip {STATS} -",
            f"0.030 200 9000 0.900 - {STATS} -",
            f"0.800 503 85 - - {STATS} -",
            "0.005 204 0 - - /api/agents/record_heartbeat/ -",
        )
    ]

    # when
    summary = summarize_answers([line for line in lines if line], path=STATS)

    # then the agent's call is left out, bytes are of the 200s, the oldest age is kept
    assert summary.answers == 4
    assert summary.statuses == {200: 3, 503: 1}
    assert summary.encodings == {"gzip": 2, "identity": 1}
    assert summary.median_body_bytes == 3000
    assert (summary.ages_reported, summary.max_snapshot_age) == (3, 1.75)
    assert summary.worker_p99 == 0.8


def test_snapshots_within_one_ttl_are_counted_over_a_sliding_window():
    assert max_starts_within([], window=2.0) == 0
    # 0 and 2.0 are a full TTL apart: never two within one
    assert max_starts_within([4.0, 0.0, 2.0], window=2.0) == 1
    # 2.5, 3.0 and 3.2 fall inside [2.5, 4.5)
    assert max_starts_within([0.0, 1.0, 2.5, 3.0, 3.2], window=2.0) == 3


def test_snapshot_count_reads_queue_listings_only_and_the_shortest_gap():
    # given the proxy's record: a snapshot is its queue listing (plus other calls)
    calls = [
        ProxiedCall("/api/queues", 0.0, 0.3, 200),
        ProxiedCall("/api/connections", 0.0, 0.2, 200),
        ProxiedCall("/api/queues", 2.4, 2.6, 200),
        ProxiedCall("/api/queues", 3.1, 3.3, 200),
    ]

    # when
    count = count_snapshots(calls, ttl=2.0)

    # then
    assert count.snapshots == 3
    assert count.max_per_ttl == 2
    assert count.shortest_gap == pytest.approx(0.5)


def test_cost_ratio_is_the_static_rate_over_the_apps_for_the_same_encoding():
    # given the app and the static body, each with and without gzip
    size = ServingSize(
        agents=10_000,
        app=[
            poll("shared", accepts_gzip=True, rps=40.0),
            poll("shared", accepts_gzip=False, rps=10.0),
        ],
        static=[
            poll("static", accepts_gzip=True, rps=50.0),
            poll("static", accepts_gzip=False, rps=30.0),
        ],
    )

    # then
    assert size.cost_ratio(accepts_gzip=True) == pytest.approx(1.25)
    assert size.cost_ratio(accepts_gzip=False) == pytest.approx(3.0)
    assert ServingSize(agents=1).cost_ratio(accepts_gzip=True) is None
    assert compute_cost_ratio(load(rps=0.0), load(rps=50.0)) == float("inf")


def test_database_only_calls_are_summarized_per_kind_with_failures_apart():
    calls = [AgentCall("heartbeat", 204, 0.010 * n) for n in range(1, 101)]
    calls += [AgentCall("envelope", 200, 0.02), AgentCall("envelope", 503, 0.5)]

    # and the server's access log: two heartbeats and a stats answer
    lines = [
        parse_access_line(text)
        for text in (
            "0.004 204 0 - - /api/agents/record_heartbeat/ -",
            "0.009 204 0 - - /api/agents/record_heartbeat/ -",
            f"0.800 503 85 - - {STATS} -",
        )
    ]

    summaries = {summary.name: summary for summary in summarize_calls(calls, lines)}

    assert summaries["heartbeat"] == CallSummary(
        "heartbeat", 100, 0, 0.5, pytest.approx(0.99), 1.0, worker_p99=0.009
    )
    assert (summaries["envelope"].calls, summaries["envelope"].failures) == (2, 1)
    assert summaries["envelope"].slowest == 0.5
    assert summaries["envelope"].worker_p99 is None


def test_the_static_app_serves_the_captured_variant_the_client_accepts(tmp_path):
    # given a captured gzip answer and its identity twin
    body = b'{"agents": []}'
    (tmp_path / "gzip.body").write_bytes(gzip.compress(body))
    (tmp_path / "gzip.encoding").write_text("gzip")
    (tmp_path / "identity.body").write_bytes(body)
    (tmp_path / "identity.encoding").write_text("")
    app = build_application(tmp_path)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    # when a gzip client and a plain one ask
    zipped = b"".join(app({"HTTP_ACCEPT_ENCODING": "gzip, deflate"}, lambda *a: started.append(a)))
    plain = b"".join(app({}, lambda *a: started.append(a)))

    # then each gets its bytes, with the matching headers
    assert gzip.decompress(zipped) == body
    assert plain == body
    assert ("Content-Encoding", "gzip") in started[0][1]
    assert ("Content-Length", str(len(zipped))) in started[0][1]
    assert all(name != "Content-Encoding" for name, _ in started[1][1])
    assert choose_variant("deflate, gzip;q=0") == "identity"
    assert choose_variant("br;q=1.0, GZIP;q=0.5") == "gzip"


def _sizes(*, p99: float, per_ttl: int, app_rps: float, call_p99: float) -> list[ServingSize]:
    small = ServingSize(
        agents=1000,
        app=[poll("shared", accepts_gzip=True, rps=900.0, p99=p99, per_ttl=per_ttl)],
        static=[poll("static", accepts_gzip=True, rps=1000.0)],
        hung=HungBrokerResult(
            stats=load(rps=100.0, p99=0.81),
            stats_answers=summarize_answers([]),
            agent_calls=[CallSummary("heartbeat", 50, 0, 0.01, call_p99, call_p99)],
            broker_connections=3,
        ),
        replicas=ReplicasResult(
            runs=[load(rps=400.0), load(rps=410.0)],
            snapshots=SnapshotCount(snapshots=10, max_per_ttl=1, shortest_gap=2.05),
            seconds=20,
            ttl=2.0,
        ),
    )
    large = ServingSize(
        agents=10_000,
        app=[poll("shared", accepts_gzip=True, rps=app_rps)],
        static=[poll("static", accepts_gzip=True, rps=60.0)],
    )
    return [small, large]


def _render(sizes: list[ServingSize]) -> str:
    return render_serving(
        sizes,
        command="bench --serving-only",
        environment=["code: x"],
        wall_seconds=300,
        is_complete=True,
        ttl=2.0,
    )


def test_the_serving_block_says_met_when_every_target_holds():
    block = _render(_sizes(p99=0.040, per_ttl=1, app_rps=50.0, call_p99=0.030))

    assert block.startswith(SERVING_START) and block.rstrip().endswith(SERVING_END)
    assert "**missed**" not in block
    assert "p99 <= 50 ms at 1,000 agents: **met** (worst of gzip and identity: 40 ms)" in block
    assert "within 1.5x of a static body at 10,000 agents (gzip): **met** (1.20x" in block
    assert "(503) within 1 s: **met**" in block
    assert "database-only calls p99 <= 100 ms: **met** (worst: heartbeat p99 30 ms" in block
    assert "| 10,000 | app, shared answer | gzip, deflate | 50.0 |" in block


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({"p99": 0.060}, "p99 <= 50 ms at 1,000 agents: **missed**"),
        ({"per_ttl": 2}, "snapshot per TTL (every poller run, and two replicas): **missed**"),
        ({"app_rps": 30.0}, "(gzip): **missed** (2.00x"),
        ({"call_p99": 0.150}, "database-only calls p99 <= 100 ms: **missed**"),
    ],
)
def test_the_serving_block_says_missed_for_each_target_that_fails(changes, missed):
    arguments = {"p99": 0.040, "per_ttl": 1, "app_rps": 50.0, "call_p99": 0.030, **changes}

    block = _render(_sizes(**arguments))

    assert missed in block
    assert block.count("**missed**") == 1


def test_writing_the_serving_block_leaves_the_endpoint_block_untouched(tmp_path):
    # given the page with both blocks and hand-written text around them
    page = tmp_path / "benchmarks.md"
    endpoint = f"{START_MARK}\nendpoint table\n{END_MARK}"
    page.write_text(
        f"# B\n\n{endpoint}\n\n## Serving\n\n{SERVING_START}\nold\n{SERVING_END}\n\nend\n"
    )

    # when only the serving phase writes
    write_results(
        page,
        f"{SERVING_START}\nnew\n{SERVING_END}\n",
        title="B",
        start_mark=SERVING_START,
        end_mark=SERVING_END,
    )

    # then
    assert page.read_text() == (
        f"# B\n\n{endpoint}\n\n## Serving\n\n{SERVING_START}\nnew\n{SERVING_END}\n\nend\n"
    )
