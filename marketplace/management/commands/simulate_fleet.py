"""Run a simulated fleet of site agents against a running agentstats server."""

import logging
import signal
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from marketplace.simulator.agent import SimulationError, StompEndpoint
from marketplace.simulator.fleet import (
    DEFAULT_OBJECT_TYPES,
    FleetSimulator,
    SimulationConfig,
    parse_object_types,
)
from marketplace.simulator.target import SimulationTarget, prepare_local_target


class Command(BaseCommand):
    help = (
        "Register N simulated agents through the HTTP API, consume their queues over STOMP "
        "over WebSocket and flap a share of them; runs until --duration or Ctrl-C."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--agents", type=int, required=True, help="How many agents.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Our API.")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--token", help="API token of the agents' owner (remote use).")
        who.add_argument(
            "--owner", help="Local use: this user (created if missing) and its token from the DB."
        )
        parser.add_argument(
            "--offering-uuid", type=UUID, help="Offering to register on (needed with --token)."
        )
        parser.add_argument("--flap-share", type=float, default=0.2, help="Share that flaps.")
        parser.add_argument("--flap-seconds", type=float, default=20.0, help="Flap period.")
        parser.add_argument("--duration", type=float, help="Seconds to run; default: until Ctrl-C.")
        parser.add_argument("--status-seconds", type=float, default=5.0, help="Status interval.")
        parser.add_argument(
            "--object-types",
            action="append",
            help=f"Comma-separated object types to subscribe to (default: "
            f"{','.join(DEFAULT_OBJECT_TYPES)}).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the flap plan.")
        parser.add_argument("--web-stomp-host", default="127.0.0.1")
        parser.add_argument("--web-stomp-port", type=int, default=15674)
        parser.add_argument("--web-stomp-path", default="/ws")

    def handle(self, *args: Any, **options: Any) -> None:
        _check_bounds(options)
        target = _resolve_target(options)
        config = SimulationConfig(
            base_url=options["base_url"],
            token=target.token,
            offering_uuid=target.offering_uuid,
            agent_count=options["agents"],
            flap_share=options["flap_share"],
            flap_seconds=options["flap_seconds"],
            duration=options["duration"],
            status_seconds=options["status_seconds"],
            stomp=StompEndpoint(
                options["web_stomp_host"], options["web_stomp_port"], options["web_stomp_path"]
            ),
            object_types=parse_object_types(options["object_types"] or DEFAULT_OBJECT_TYPES),
            seed=options["seed"],
        )
        if options["verbosity"] < 2:
            # stomp.py logs every (re)connect and refusal; the simulator's lines say it.
            logging.getLogger("stomp.py").setLevel(logging.ERROR)
        simulator = FleetSimulator(config, write=self.stdout.write)
        with _stopping_on_signals(simulator):
            try:
                simulator.run()
            except SimulationError as exc:
                raise CommandError(str(exc)) from exc


def _check_bounds(options: dict[str, Any]) -> None:
    if options["agents"] < 1:
        raise CommandError("--agents must be at least 1.")
    if not 0.0 <= options["flap_share"] <= 1.0:
        raise CommandError("--flap-share must be between 0 and 1.")
    for name in ("flap_seconds", "status_seconds"):
        if options[name] <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive.")


def _resolve_target(options: dict[str, Any]) -> SimulationTarget:
    if options["token"] is not None:
        if options["offering_uuid"] is None:
            raise CommandError("--token needs --offering-uuid.")
        return SimulationTarget(token=options["token"], offering_uuid=str(options["offering_uuid"]))
    try:
        return prepare_local_target(options["owner"], offering_uuid=options["offering_uuid"])
    except SimulationError as exc:
        raise CommandError(str(exc)) from exc


@contextmanager
def _stopping_on_signals(simulator: FleetSimulator) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run cleanly (consumers disconnect) instead of killing it."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        simulator.stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
