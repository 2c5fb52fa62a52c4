"""The write throttle's counts are per process without CACHE_URL: `check --deploy` and
every gunicorn worker's start-up say so; with Redis they are shared and nothing warns."""

import logging
import os
import subprocess
import sys

from agentstats.api.throttling import describe_process_local_throttle
from agentstats.checks import check_throttle_store
from agentstats.wsgi import warn_about_process_local_throttle
from tests.kit.paths import ROOT


def run_deploy_check(cache_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "x" * 60, "CACHE_URL": cache_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_warns_when_the_throttle_counts_per_process():
    # when the deployment checklist runs with no CACHE_URL
    completed = run_deploy_check("")

    # then it names the problem and the fix
    output = completed.stdout + completed.stderr
    assert "agentstats.W001" in output
    assert "CACHE_URL=redis://" in output


def test_check_deploy_is_quiet_about_the_throttle_with_redis():
    completed = run_deploy_check("redis://127.0.0.1:6379/15")

    assert "agentstats.W001" not in completed.stdout + completed.stderr


def test_no_warning_when_there_is_no_throttle(settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""

    assert describe_process_local_throttle() is None
    assert check_throttle_store() == []


def test_a_gunicorn_worker_warns_at_start_up(settings, caplog, monkeypatch):
    # given a local-memory cache (CACHE_URL unset) inside gunicorn
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.AGENT_WRITE_THROTTLE_RATE = "300/min"
    monkeypatch.setitem(sys.modules, "gunicorn", sys.modules.get("gunicorn") or object())

    # when the worker loads the application
    with caplog.at_level(logging.WARNING, logger="agentstats.wsgi"):
        warn_about_process_local_throttle()

    # then
    assert "AGENT_WRITE_THROTTLE_RATE (300/min) is counted in each server process" in caplog.text


def test_other_processes_do_not_warn_at_start_up(settings, caplog, monkeypatch):
    settings.AGENT_WRITE_THROTTLE_RATE = "300/min"
    monkeypatch.delitem(sys.modules, "gunicorn", raising=False)

    with caplog.at_level(logging.WARNING, logger="agentstats.wsgi"):
        warn_about_process_local_throttle()

    assert "AGENT_WRITE_THROTTLE_RATE" not in caplog.text
