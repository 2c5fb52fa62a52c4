"""Two `manage.py run_jobs` processes against one PostgreSQL database, with 4-second
periods: every job runs exactly once per period (no duplicate (job, period_start), no
period of the window left out), and when one process is killed the other carries on.

The management API points at a closed port, so the reconcile job is claimed and skipped
at once (its broker work has its own tests) instead of timing the shared broker."""

import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from marketplace.jobs.registry import JOB_NAMES, JOBS
from marketplace.models import AgentService, JobRun
from marketplace.names import AgentServiceState, JobOutcome
from tests.factories import AgentProcessorFactory, AgentServiceFactory
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until

# Long enough that a scheduler thread delayed by a busy machine still fires inside its
# period (a firing later than its whole period is lost by design: at most once).
PERIOD = 4
# Generous: two Django processes start on a loaded 2-core machine.
DEADLINE = 180


def scheduler_environment() -> dict[str, str]:
    """The test database, 4-second periods for every job, and a broker that refuses."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{closed_port()}",
        "RABBITMQ_GET_RETRIES": "0",
        "AGENT_SERVICE_IDLE_AFTER_SECONDS": "600",
        "DATABASE_CONN_MAX_AGE": "0",
    }
    for job in JOBS:
        env[job.period_setting] = str(PERIOD)
    return env


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_scheduler(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_jobs"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def runner_of(process: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{process.pid}"


def claimed_periods(job: str, runner: str | None = None) -> list:
    runs = JobRun.objects.filter(job=job)
    if runner is not None:
        runs = runs.filter(runner=runner)
    return sorted(runs.values_list("period_start", flat=True))


@pytest.fixture
def schedulers(transactional_db, real_postgres):
    env = scheduler_environment()
    processes = [start_scheduler(env), start_scheduler(env)]
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(f"--- run_jobs {process.pid} ---\n{output.decode(errors='replace')}")


def test_two_schedulers_run_each_job_once_per_period_and_one_survives_the_other(schedulers):
    # given a service whose processor went silent an hour ago, and two schedulers
    silent = AgentServiceFactory(state=AgentServiceState.ACTIVE)
    AgentProcessorFactory(service=silent, last_run=timezone.now() - timedelta(hours=1))
    first, second = schedulers

    # when both have run jobs for several periods
    wait_until(
        lambda: all(len(claimed_periods(job)) >= 5 for job in JOB_NAMES),
        timeout=DEADLINE,
        message="five periods of every job claimed",
    )
    assert first.poll() is None and second.poll() is None, "both schedulers are running"

    # and the first is killed, and the second runs on for several more periods
    first.kill()
    first.wait(timeout=30)
    killed_at = timezone.now()
    survivor = runner_of(second)
    wait_until(
        lambda: all(
            len([p for p in claimed_periods(job, survivor) if p > killed_at]) >= 3
            for job in JOB_NAMES
        ),
        timeout=DEADLINE,
        message="three more periods of every job claimed by the survivor",
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0

    # then no period of any job was claimed twice, none in the window was left out
    for job in JOB_NAMES:
        periods = claimed_periods(job)
        assert len(periods) == len(set(periods)), job
        expected = [periods[0] + timedelta(seconds=PERIOD * i) for i in range(len(periods))]
        gaps = sorted(set(expected) - set(periods))
        assert periods == expected, f"{job}: periods left out: {gaps}"
    # and the kill did not stop the jobs: the survivor ran every period after it
    after_kill = JobRun.objects.filter(period_start__gt=killed_at)
    assert set(after_kill.values_list("runner", flat=True)) == {survivor}
    # and the jobs did their work: the silent service is Idle, runs ended as expected
    assert AgentService.objects.get(pk=silent.pk).state == AgentServiceState.IDLE
    outcomes = defaultdict(set)
    for job, outcome in JobRun.objects.exclude(outcome=JobOutcome.RUNNING).values_list(
        "job", "outcome"
    ):
        outcomes[job].add(outcome)
    assert outcomes["mark_idle_services"] == {JobOutcome.OK}
    assert outcomes["reconcile_connections"] == {JobOutcome.SKIPPED_BROKER_UNAVAILABLE}
