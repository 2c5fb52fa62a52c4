"""A malformed METRICS_ALLOWED_NETWORKS stops the start (naming the entry) and fails
`check --deploy`, instead of answering every /metrics scrape with a 500."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from marketplace.metrics.checks import check_metrics_allowed_networks
from tests.kit.paths import ROOT


@pytest.mark.parametrize("bad", ["10.0.0.300/8", "not-a-network", "10.0.0.0/33"])
def test_the_server_does_not_start_with_a_malformed_network(bad):
    # when the settings are loaded with one bad entry among good ones
    completed = subprocess.run(
        [sys.executable, "-c", "from agentstats import settings"],
        env={
            **os.environ,
            "SECRET_KEY": "test",
            "METRICS_ALLOWED_NETWORKS": f"127.0.0.1/32, {bad} ,::1/128",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    # then start-up fails, naming the entry
    assert completed.returncode != 0
    assert "ImproperlyConfigured" in completed.stderr
    assert f"METRICS_ALLOWED_NETWORKS: {bad!r} is not a network" in completed.stderr


def test_good_networks_load():
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from agentstats import settings as s; print(s.METRICS_ALLOWED_NETWORKS)",
        ],
        env={
            **os.environ,
            "SECRET_KEY": "test",
            "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,::1,192.168.1.7",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert completed.stdout.strip() == "['10.0.0.0/8', '::1', '192.168.1.7']"


def test_check_deploy_fails_on_a_malformed_network(settings):
    # given a configuration that bypassed the environment (e.g. a settings override)
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "10.0.0.300/8"]

    # when / then the deployment checklist refuses it, naming the entry
    with pytest.raises(SystemCheckError, match=r"marketplace.E001.*'10.0.0.300/8'"):
        call_command("check", deploy=True)


def test_the_check_is_silent_for_good_networks(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128", "10.1.2.3"]

    assert check_metrics_allowed_networks() == []
