"""The service as production runs it, as separate processes: app instances under gunicorn
and `manage.py observe_connections` processes, sharing the test database and a Redis db.
Every process logs to its own file and is stopped (SIGTERM, then SIGKILL) on the way out."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from tests.kit.gunicorn import wait_until_serving
from tests.kit.network import free_port
from tests.kit.paths import ROOT

STOP_SECONDS = 30


def url_of_test_database() -> str:
    """DATABASE_URL of the test database this test runs on (PostgreSQL)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Replica:
    """One started process and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Replicas:
    """The processes a test started, stopped in reverse order at the end."""

    log_dir: Path
    started: list[Replica] = field(default_factory=list)

    def start_app(self, name: str, *, env: dict[str, str], workers: int = 2) -> Replica:
        """gunicorn serving the app on a free port; waits until it answers."""
        port = free_port()
        replica = self._start(
            name,
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "agentstats.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                # A loaded machine may take long over a first request; no worker kill then.
                "--timeout",
                "120",
            ],
            env=env,
        )
        replica.url = f"http://127.0.0.1:{port}"
        return replica

    def start_observer(self, name: str, *, env: dict[str, str]) -> Replica:
        return self._start(name, [sys.executable, "manage.py", "observe_connections"], env=env)

    def wait_until_serving(self, replica: Replica) -> None:
        wait_until_serving(replica.url, replica.process)

    def stop_all(self) -> None:
        for replica in reversed(self.started):
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in reversed(self.started):
            try:
                replica.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=STOP_SECONDS)

    def _start(self, name: str, args: list[str], *, env: dict[str, str]) -> Replica:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own app and commands
                args,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(name=name, process=process, log=log)
        self.started.append(replica)
        return replica


@contextmanager
def running_replicas(log_dir: Path) -> Iterator[Replicas]:
    """Start processes through the yielded Replicas; all are stopped when the block ends,
    and each one's log is printed (pytest shows it for a failing test)."""
    replicas = Replicas(log_dir=log_dir)
    try:
        yield replicas
    finally:
        replicas.stop_all()
        for replica in replicas.started:
            print(f"--- {replica.name} (pid {replica.pid}) ---\n{replica.output()[-20000:]}")
