"""What a benchmark ran on, for the results page: the code, the machine and the services."""

import argparse
import os
import platform
import subprocess
from pathlib import Path

from django.conf import settings
from django.db import connection

from agentstats import gunicorn_conf
from bench import broker as bench_broker
from bench.server import REPO


def describe_environment(
    args: argparse.Namespace, api: bench_broker.ManagementAPI, node: dict[str, object]
) -> list[str]:
    """What the results were measured on: code, machine, broker, database, app, fleet."""
    overview = api.get("overview")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    cpu = _cpu_model()
    return [
        f"code: {_describe_revision()}",
        f"machine: {cpu}, {_cpu_count()} cores, Python {platform.python_version()}",
        f"RabbitMQ {overview['rabbitmq_version']} (Erlang {overview['erlang_version']}), "
        f"open-file limit {node['fd_total']}, socket limit {node['sockets_total']}; "
        f"PostgreSQL {postgres}",
        "app: `gunicorn -c python:agentstats.gunicorn_conf agentstats.wsgi -b 127.0.0.1:<free "
        f"port> --timeout 120` (the shipped configuration: {gunicorn_conf.worker_class}, "
        f"{args.workers} workers x {args.threads or gunicorn_conf.threads} threads), "
        "DATABASE_URL = the bench database, CACHE_URL unset (local memory; the load run and "
        "the serving phase use Redis), other "
        "settings at their defaults (RABBITMQ_SNAPSHOT_READ_TIMEOUT "
        f"{settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT:g} s, GC_THRESHOLDS "
        f"{','.join(map(str, settings.GC_THRESHOLDS))})",
        "fleet: "
        + (
            f"a new provider every {args.agents_per_provider} agents"
            if args.agents_per_provider
            else f"agents spread over {args.providers} providers"
        )
        + " (one owner, hence one vhost, per provider); 4 services, 3 subscriptions with one "
        f"queue each per agent; {args.messages} messages in every {args.messages_every}th queue; "
        f"{args.connections} AMQP client connections (one consumer each) spread over the fleet",
    ]


def _describe_revision() -> str:
    """The commit measured, and whether app code differed from it (others edit the tree)."""
    head = _git("rev-parse", "--short", "HEAD")
    changed = _git("status", "--porcelain", "--", "agentstats", "marketplace", "rmq")
    return f"commit {head}" + (", with uncommitted changes to the app" if changed else "")


def _git(*args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", *args],  # noqa: S607 - git from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return completed.stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))
