"""The observer's lease must outlast several beats: a configuration where one slow beat
would hand over stops the start, naming both settings."""

import os
import subprocess
import sys

import pytest

from tests.kit.paths import ROOT


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from agentstats import settings as s; "
            "print(s.OBSERVER_LEASE_SECONDS, s.OBSERVER_HEARTBEAT_SECONDS, "
            "s.OBSERVER_STANDBY_POLL_SECONDS)",
        ],
        env={**os.environ, "SECRET_KEY": "test", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("lease", "heartbeat"), [("20", "10"), ("10", "5"), ("5", "5"), ("2", "30")]
)
def test_a_lease_shorter_than_three_beats_stops_the_start(lease, heartbeat):
    # when the settings are loaded with a lease under three heartbeats
    completed = load_settings(OBSERVER_LEASE_SECONDS=lease, OBSERVER_HEARTBEAT_SECONDS=heartbeat)

    # then start-up fails, naming both
    assert completed.returncode != 0
    assert "ImproperlyConfigured" in completed.stderr
    assert f"OBSERVER_LEASE_SECONDS ({lease}) must be at least three" in completed.stderr
    assert f"OBSERVER_HEARTBEAT_SECONDS ({heartbeat})" in completed.stderr


@pytest.mark.parametrize("name", ["OBSERVER_HEARTBEAT_SECONDS", "OBSERVER_STANDBY_POLL_SECONDS"])
def test_a_heartbeat_or_poll_of_zero_stops_the_start(name):
    completed = load_settings(**{name: "0"})

    assert completed.returncode != 0
    assert "must be positive" in completed.stderr


def test_the_defaults_hand_over_within_25_seconds_and_load():
    completed = load_settings()

    assert completed.returncode == 0, completed.stderr
    lease, heartbeat, poll = (float(value) for value in completed.stdout.split())
    assert (lease, heartbeat, poll) == (20, 5, 5)
    assert lease >= 3 * heartbeat
