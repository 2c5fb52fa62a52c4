"""The app under gunicorn on a free port, with its database at a port where nothing
listens: how the real server behaves in a database outage."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.kit.network import free_port
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until

# Generous on purpose: on a busy machine the first answer of a fresh worker takes seconds.
READY_DEADLINE_SECONDS = 60
PROBE_CONNECT_SECONDS = 5
PROBE_READ_SECONDS = 15


@contextmanager
def serve_without_database() -> Iterator[str]:
    """gunicorn serving the app with DATABASE_URL at a port where nothing listens; yields
    its base URL, and asserts at the end that it printed no traceback."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/agentstats",
        SECRET_KEY="test-only-secret-key",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
    )
    process = subprocess.Popen(  # noqa: S603 - our own app under gunicorn
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "agentstats.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            # A loaded machine may take long over the first request; no worker kill then.
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
        assert b"Traceback" not in stderr


def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    """Poll until gunicorn answers anything at all, with a deadline a loaded 2-core
    machine meets: a worker that is still importing Django answers late, not never."""

    def is_serving() -> bool:
        assert process.poll() is None, "gunicorn exited before serving"
        try:
            requests.get(f"{url}/api/schema/", timeout=(PROBE_CONNECT_SECONDS, PROBE_READ_SECONDS))
        except requests.RequestException:
            return False  # not listening yet, or busy starting: probe again
        return True

    wait_until(is_serving, timeout=READY_DEADLINE_SECONDS, interval=0.2, message="gunicorn answers")
