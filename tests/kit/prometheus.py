"""A real Prometheus server for a test: the shipped rules with short `for:` holds, a temp
config and data dir, a private port, bounded waits, and always stopped; its HTTP API."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.kit.network import free_port
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULES_TESTS = ROOT / "tests" / "deploy" / "prometheus_rules_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "agentstats.json"
SCRAPE_JOB = "agentstats"
START_SECONDS = 120
STOP_SECONDS = 30


@dataclass(frozen=True)
class Binaries:
    """Debian's `prometheus` and `promtool` (package prometheus; `make prometheus`)."""

    prometheus: str
    promtool: str


def find_binaries() -> Binaries | None:
    """The installed binaries, or None when either is missing."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        return None
    return Binaries(prometheus=prometheus, promtool=promtool)


def run_promtool(binaries: Binaries, *args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool with a bounded wait; its output is returned, not printed."""
    return subprocess.run(  # noqa: S603 - the installed promtool, our own files
        [binaries.promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def write_short_rules(target: Path, *, hold: str) -> Path:
    """Copy the shipped rules with every alert's `for:` shortened to `hold`."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = hold
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


@dataclass
class PrometheusServer:
    """A running Prometheus: where it answers, its process and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a success answer (a failure fails the test)."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar) an expression evaluates to now."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [data]

    def stop(self) -> None:
        """Terminate it and wait; kill it if it will not stop. No process is left behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)


def start_prometheus(
    binaries: Binaries, workdir: Path, *, target: str, rules: Path, scrape_seconds: int = 2
) -> PrometheusServer:
    """Start Prometheus on a private port scraping `target` (host:port) at /metrics every
    `scrape_seconds` and evaluating `rules` every second; wait until it is ready."""
    port = free_port()
    config = {
        "global": {
            "scrape_interval": f"{scrape_seconds}s",
            "scrape_timeout": f"{scrape_seconds}s",
            "evaluation_interval": "1s",
        },
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    log = workdir / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the installed prometheus, our own config
            [
                binaries.prometheus,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        wait_until(
            lambda: _is_ready(server),
            timeout=START_SECONDS,
            interval=0.5,
            message=f"Prometheus ready on port {port}",
        )
    except AssertionError:
        server.stop()
        raise AssertionError(f"Prometheus did not start:\n{log.read_text()[-4000:]}") from None
    return server


def _is_ready(server: PrometheusServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"Prometheus exited:\n{server.log.read_text()[-4000:]}")
    try:
        return requests.get(f"{server.url}/-/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False
