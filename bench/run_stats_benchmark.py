"""Benchmark the connection-stats endpoint against the broker's floor and the upstream pattern.

    .venv/bin/python bench/run_stats_benchmark.py --agents 100 1000 5000 --requests 10

For each fleet size (ascending, each grown from the previous one): seed the agents into
the bench PostgreSQL database, create their vhosts, users and queues on the local
RabbitMQ (messages in every 10th queue), open real AMQP client connections as
subscription users, serve the app with gunicorn, and time interleaved: the endpoint end
to end, the floor (the raw bulk calls the endpoint needs) and the upstream pattern.
Counts queries and broker calls in-process, reads the workers' peak RSS, profiles the
read path at 1,000 agents and at the largest size, writes docs/benchmarks.md and deletes
every broker object it created (they are tagged, so a killed run's leftovers go on the
next run, or with --cleanup-only).
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/agentstats_bench"
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production"  # noqa: S105 - local bench app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--requests", type=int, default=10, help="samples per probe (>= 10)")
    parser.add_argument("--connections", type=int, default=200, help="AMQP client connections")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--providers",
        type=int,
        default=5,
        help="service providers (customers) the agents are spread over; each has one "
        "owner, hence one broker vhost",
    )
    shape.add_argument(
        "--agents-per-provider",
        type=int,
        default=0,
        help="instead of a fixed --providers: a new provider (and vhost) every N agents",
    )
    parser.add_argument(
        "--rabbitmq-read-timeout",
        type=float,
        default=None,
        help="RABBITMQ_READ_TIMEOUT for the app (default: the app's own)",
    )
    parser.add_argument(
        "--messages-every", type=int, default=10, help="every Nth queue gets messages"
    )
    parser.add_argument("--messages", type=int, default=5, help="messages per such queue")
    parser.add_argument(
        "--upstream-budget",
        type=float,
        default=150.0,
        help="seconds per fleet size the upstream probe may spend; it always gets 3 samples",
    )
    load = parser.add_argument_group("load run (wrk, snapshot shared through Redis)")
    load.add_argument("--load-at", type=int, default=1000, help="fleet size of the load run")
    load.add_argument("--load-seconds", type=int, default=30, help="0 skips the load run")
    load.add_argument("--load-connections", type=int, default=32, help="concurrent pollers")
    load.add_argument(
        "--load-ttl", type=float, default=2.0, help="BROKER_SNAPSHOT_TTL of the load run"
    )
    load.add_argument("--load-cache-url", default="redis://127.0.0.1:6379/9")
    serving = parser.add_argument_group(
        "serving phase (wrk against the shipped server, a static body, a hung broker, two "
        "replicas; it uses --load-connections, --load-ttl and --load-cache-url too)"
    )
    serving.add_argument(
        "--serving-agents",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help="fleet sizes of the serving phase; the hung broker and the two replicas run at "
        "the first",
    )
    serving.add_argument(
        "--serving-seconds", type=int, default=20, help="each wrk run; 0 skips the phase"
    )
    serving.add_argument(
        "--serving-only",
        action="store_true",
        help="run only the serving phase (the endpoint/floor/upstream block is left as is)",
    )
    parser.add_argument("--profile-repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per gunicorn worker (default: agentstats/gunicorn_conf.py's)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--output", type=Path, default=REPO / "docs/benchmarks.md")
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker objects")
    parser.add_argument(
        "--cleanup-only", action="store_true", help="delete tagged broker objects and exit"
    )
    args = parser.parse_args(argv)
    args.agents = sorted(set(args.agents))
    args.serving_agents = sorted(set(args.serving_agents))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "agentstats.settings",
            "DATABASE_URL": args.database_url,
            "SECRET_KEY": BENCH_SECRET_KEY,
            # testserver: the in-process request that counts queries and broker calls.
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "DEBUG": "false",
            # Plain HTTP on 127.0.0.1: production puts TLS in front of the app.
            "SECURE_SSL_REDIRECT": "false",
            # In-process counts and profile ask the broker on every call, as the endpoint
            # does whenever the shared snapshot has expired.
            "BROKER_SNAPSHOT_TTL": "0",
        }
    )
    if args.rabbitmq_read_timeout is not None:
        os.environ["RABBITMQ_READ_TIMEOUT"] = str(args.rabbitmq_read_timeout)
    if not args.cleanup_only:
        ensure_database(args.database_url)
        migrate()
    import django

    django.setup()
    from bench.run import cleanup_only, run_benchmark

    if args.cleanup_only:
        return cleanup_only()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    return run_benchmark(args, command=_command_line(argv))


def ensure_database(url: str) -> None:
    """Create the bench database when it is missing (connecting to `postgres` to do so)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)


def migrate() -> None:
    """manage.py migrate against the bench database (DATABASE_URL, SECRET_KEY from env)."""
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, str(REPO / "manage.py"), "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=dict(os.environ),
        check=True,
        timeout=300,
    )


def _command_line(argv: list[str] | None) -> str:
    given = sys.argv[1:] if argv is None else argv
    return ".venv/bin/python bench/run_stats_benchmark.py " + " ".join(map(shlex.quote, given))


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> Any:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks delete what the run created.
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
