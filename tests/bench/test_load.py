"""The load run's bookkeeping: wrk's report, the proxy's record and the access log."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench.load import CountingProxy, ProxiedCall, summarize_load

# wrk 4.1's report, as printed on this machine (a 404-only target, so every answer is non-2xx).
WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:18999/nonexistent
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.33ms    1.90ms  14.48ms   82.74%
    Req/Sec     0.96k   389.12     1.97k    85.00%
  Latency Distribution
     50%    1.69ms
     75%    3.26ms
     90%    4.84ms
     99%    1.21s
  3814 requests in 2.00s, 1.89MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3814
Requests/sec:   1904.09
Transfer/sec:      0.94MB
"""


def _calls(*windows: tuple[float, float]) -> list[ProxiedCall]:
    calls = []
    for started, finished in windows:
        calls.append(ProxiedCall("/api/queues", started, finished, 200))
        calls.append(ProxiedCall("/api/connections", started, finished - 0.1, 200))
    return calls


def test_summary_reads_wrk_latencies_errors_and_counts_snapshots_per_ttl(tmp_path):
    # given wrk's report, snapshots started at 0, 2.5 and 3.0 s, and an access log
    access_log = tmp_path / "access.log"
    access_log.write_text(
        '0.120 200 broker;desc="fetched";dur=110.5\n'
        '0.480 200 broker;desc=\\"waited\\";dur=95.0\n'
        "0.001 401 -\n"
        '0.200 200 answer;desc="shared"\n'
    )

    # when
    load = summarize_load(
        WRK_OUTPUT,
        connections=4,
        seconds=2,
        calls=_calls((3.0, 3.4), (0.0, 0.3), (2.5, 2.8)),
        ttl=2.0,
        access_log=access_log,
    )

    # then
    assert (load.requests, load.requests_per_second) == (3814, 1904.09)
    assert load.latency_p50 == pytest.approx(0.00169)
    assert load.latency_p99 == pytest.approx(1.21)
    assert load.latency_max == pytest.approx(0.01448)
    assert (load.non_2xx, load.socket_errors) == (3814, 3)
    assert load.snapshots == 3
    assert load.snapshot_seconds == pytest.approx([0.3, 0.3, 0.4])
    # from 0.3 (first answered) to 2.5, and from 2.8 to 3.0
    assert load.shortest_gap == pytest.approx(0.2)
    assert load.worker_seconds == [0.12, 0.48, 0.2]
    assert load.broker_waits == {
        "fetched": [pytest.approx(0.1105)],
        "waited": [pytest.approx(0.095)],
        "answer shared": [0.0],
    }


def test_summary_of_a_clean_run_counts_no_errors(tmp_path):
    clean = WRK_OUTPUT.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 3814\n", "")
    access_log = tmp_path / "access.log"
    access_log.write_text("")

    load = summarize_load(clean, connections=4, seconds=2, calls=[], ttl=2.0, access_log=access_log)

    assert (load.non_2xx, load.socket_errors, load.snapshots) == (0, 0, 0)
    assert load.shortest_gap is None


def test_counting_proxy_forwards_gets_with_the_credentials_and_records_them():
    # given a stand-in management API that echoes the Authorization header
    class Upstream(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (self.headers.get("Authorization") or "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            return

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = CountingProxy(f"http://127.0.0.1:{upstream.server_address[1]}")
    try:
        with proxy.serving():
            # when the app's client asks through the proxy
            answer = requests.get(
                proxy.url + "/api/queues?columns=name", auth=("guest", "pw"), timeout=5
            )
    finally:
        upstream.shutdown()
        upstream.server_close()

    # then the answer is the upstream's, and the call is recorded without its query
    assert answer.status_code == 200
    assert answer.text.startswith("Basic ")
    assert [(call.path, call.status) for call in proxy.calls] == [("/api/queues", 200)]
    assert proxy.calls[0].finished >= proxy.calls[0].started
