"""gunicorn serving the app for the benchmark, and its workers' peak memory."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

REPO = Path(__file__).resolve().parent.parent
READINESS_PATH = "/api/marketplace-site-agent-connection-stats/"
STARTUP_SECONDS = 60
# Access-log line: seconds the request spent in the worker, the status, the body bytes
# sent (as on the wire: compressed when the answer was), the app's X-Snapshot-Age and
# Content-Encoding headers, the path, and last (it may hold spaces) the Server-Timing
# header (how long it waited for the broker, and why). "-" stands for a missing header.
ACCESS_LOG_FORMAT = (
    "%(L)s %(s)s %(B)s %({x-snapshot-age}o)s %({content-encoding}o)s %(U)s %({server-timing}o)s"
)
# The shipped server configuration (threaded workers), as the image runs it.
GUNICORN_CONFIG = "python:agentstats.gunicorn_conf"
APP = "agentstats.wsgi"


def pick_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gunicorn:
    """`gunicorn -c python:agentstats.gunicorn_conf agentstats.wsgi` (the shipped threaded
    configuration) on a free port; stopped (by its own pid) on exit."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int,
        timeout: int,
        log_path: Path,
        access_log: Path | None = None,
        threads: int | None = None,
        app: str = APP,
        readiness_path: str = READINESS_PATH,
    ) -> None:
        self.access_log = access_log
        self.app = app
        self.readiness_path = readiness_path
        # The configuration reads its worker and thread counts from the environment.
        env = {**env, "GUNICORN_WORKERS": str(workers)}
        if threads is not None:
            env["GUNICORN_THREADS"] = str(threads)
        self.port = pick_free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.workers = workers
        self.timeout = timeout
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Gunicorn":
        command = [
            # The gunicorn beside the running interpreter (.venv/bin).
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            GUNICORN_CONFIG,
            self.app,
            "-b",
            f"127.0.0.1:{self.port}",
            "--timeout",
            str(self.timeout),
        ]
        if self.access_log is not None:
            command += [
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                ACCESS_LOG_FORMAT,
            ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_serving(deadline=time.monotonic() + STARTUP_SECONDS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def worker_peak_rss_kib(self) -> list[int]:
        """VmHWM (peak resident set) of each live worker, in KiB."""
        return [_read_vm_hwm(pid) for pid in self.worker_pids()]

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
        return sorted(pids)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _wait_until_serving(self, *, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}")
            try:
                # Unauthenticated: answered (401) without touching the database or broker.
                requests.get(self.base_url + self.readiness_path, timeout=5)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn did not serve in {STARTUP_SECONDS} s; see {self.log_path}")


def _read_vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def server_env(base: dict[str, str]) -> dict[str, str]:
    """The app's environment for gunicorn: the caller's plus the bench overrides."""
    env = dict(os.environ)
    env.update(base)
    return env
