"""Run the real `waldur-site-agent` (installed by `make install` beside the app) as a subprocess.

Each agent version lives in its own `pip install --target` folder, `.venv/agent-<version>`:
its pins (stomp.py < 9, its own SDK line) conflict with ours. The agent runs with `-S`, so
only the standard library, that folder and the mock backend plugin are on its path; nothing
of our virtualenv leaks in. The wheels ship no backend: the plugin is a two-file
dist-info, generated at test time, that registers the agent's own bundled
`waldur_site_agent.testing.mock_backend:MockBackend` as the backend `mock`.
"""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get

# A loaded 2-core machine: the agent's start-up alone imports pydantic, sentry and the SDK.
WAIT_SECONDS = 90
WEB_STOMP = ("127.0.0.1", 15674, "/ws")
PLUGIN_NAME = "waldur-site-agent-testmock"
PLUGIN_VERSION = "0.0.1"


def agent_site(version: str) -> Path:
    """Where `make install` put one agent version and its dependencies."""
    path = Path(sys.prefix) / f"agent-{version}"
    assert (path / "waldur_site_agent").is_dir(), (
        f"`make install` puts waldur-site-agent {version} in {path}"
    )
    return path


def write_mock_backend_plugin(directory: Path) -> Path:
    """Write the dist-info that registers the agent's bundled mock backend as `mock`."""
    dist_info = directory / f"waldur_site_agent_testmock-{PLUGIN_VERSION}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PLUGIN_NAME}\nVersion: {PLUGIN_VERSION}\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[waldur_site_agent.backends]\nmock = waldur_site_agent.testing.mock_backend:MockBackend\n"
    )
    return directory


def write_agent_config(path: Path, *, api_url: str, token: str, offering_uuid: str) -> Path:
    """Write an event-processing config for one offering (JSON is YAML too)."""
    host, port, ws_path = WEB_STOMP
    offering = {
        "name": f"Real agent test {offering_uuid[:8]}",
        "waldur_api_url": api_url,
        "waldur_api_token": token,
        "waldur_offering_uuid": offering_uuid,
        "backend_type": "mock",
        "order_processing_backend": "mock",
        "stomp_enabled": True,
        "websocket_use_tls": False,
        "stomp_ws_host": host,
        "stomp_ws_port": port,
        "stomp_ws_path": ws_path,
    }
    path.write_text(json.dumps({"offerings": [offering], "log_level": "INFO"}, indent=2))
    return path


@dataclass
class AgentProcess:
    """One running agent; its stdout and stderr go to `log_path`."""

    version: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged_events(self) -> list[str]:
        """The messages of its log lines (structlog writes one JSON object a line)."""
        events = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("event"), str):
                events.append(record["event"])
        return events

    def terminate(self, *, timeout: float = WAIT_SECONDS) -> int:
        """SIGTERM, as an init system stops it; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@dataclass
class AgentLauncher:
    """Start agents in a scratch folder; `close` kills whatever still runs."""

    workdir: Path
    started: list[AgentProcess] = field(default_factory=list)

    def start(self, version: str, *, api_url: str, token: str, offering_uuid: str) -> AgentProcess:
        folder = self.workdir / f"agent-{version}-{offering_uuid[:8]}"
        folder.mkdir(parents=True)
        plugin = write_mock_backend_plugin(folder / "plugin")
        config = write_agent_config(
            folder / "config.yaml", api_url=api_url, token=token, offering_uuid=offering_uuid
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        env["PYTHONPATH"] = os.pathsep.join([str(agent_site(version)), str(plugin)])
        env["PYTHONUNBUFFERED"] = "1"
        log_path = folder / "agent.log"
        # -S: no site-packages of ours, so nothing of our virtualenv shadows the agent's pins.
        command = [sys.executable, "-S", "-m", "waldur_site_agent.main"]
        command += ["-m", "event_process", "-c", str(config)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed arguments, our own files
                command,
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        agent = AgentProcess(version=version, process=process, log_path=log_path)
        self.started.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.started:
            agent.kill()
            print(f"----- waldur-site-agent {agent.version} output ({agent.log_path}) -----")
            print(agent.output())


def wait_for(
    what: str,
    condition: Callable[[], Any],
    *,
    agents: list[AgentProcess],
    gives_up_when: str | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy (within WAIT_SECONDS) and return it.

    Fails at once when an agent has exited, or has logged `gives_up_when`: the agent
    does not retry that step, so waiting longer would only delay the failure.
    """

    def condition_while_agents_run() -> Any:
        value = condition()
        if value:
            return value
        for agent in agents:
            code = agent.process.poll()
            assert code is None, f"agent {agent.version} exited ({code}) waiting for {what}"
            if gives_up_when is not None:
                assert gives_up_when not in agent.output(), (
                    f"agent {agent.version} logged {gives_up_when!r} waiting for {what}"
                )
        return value

    return wait_until(condition_while_agents_run, timeout=WAIT_SECONDS, interval=0.5, message=what)


def consumer_tags(*, vhost: str, queue_name: str) -> list[str]:
    """The tags of the consumers RabbitMQ lists on one queue of a vhost."""
    listed = management_get(f"consumers/{vhost}")
    listed.raise_for_status()
    consumers = listed.json()
    return [c["consumer_tag"] for c in consumers if c["queue"]["name"] == queue_name]
