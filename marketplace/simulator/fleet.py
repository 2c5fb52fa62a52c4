"""A living fleet for demos, the dashboard and benchmarks: simulated agents that register
through the HTTP API, consume their queues over STOMP over WebSocket, and flap.

The simulator registers every agent first (the real agent's flow, idempotent), then
reconciles every consumer with the flap plan (`schedule`) a few times a second: it
connects what should be online (a broker that refuses is retried with doubling delays,
never in a tight loop) and disconnects what should not.
"""

import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from marketplace.names import ObservableObjectType
from marketplace.simulator.agent import (
    AgentApiClient,
    HttpPolicy,
    SimulationError,
    SimulationStopped,
    StompConnectError,
    StompConsumer,
    StompEndpoint,
    register_agent,
)
from marketplace.simulator.schedule import FlapSchedule, RetryState

DEFAULT_OBJECT_TYPES = (ObservableObjectType.ORDER, ObservableObjectType.RESOURCE)
TICK_SECONDS = 0.5
CONNECT_WORKERS = 8
STOMP_CONNECT_TIMEOUT_SECONDS = 10.0
STOMP_DISCONNECT_TIMEOUT_SECONDS = 5.0
STATUS_AGENT_LIMIT = 10


@dataclass
class SimulatedSubscription:
    """One subscription's consumer and its retry state."""

    consumer: StompConsumer
    retry: RetryState = field(default_factory=RetryState)

    @property
    def name(self) -> str:
        """agent/object type, for messages."""
        return f"{self.consumer.endpoint.agent_name}/{self.consumer.endpoint.object_type}"


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate and where: our API, the offering, the broker's Web STOMP listener."""

    base_url: str
    token: str
    offering_uuid: str
    agent_count: int
    flap_share: float = 0.2
    flap_seconds: float = 20.0
    duration: float | None = None
    status_seconds: float = 5.0
    stomp: StompEndpoint = field(default_factory=lambda: StompEndpoint("127.0.0.1", 15674, "/ws"))
    object_types: tuple[str, ...] = DEFAULT_OBJECT_TYPES
    name_prefix: str = "sim-agent"
    seed: int = 0
    http: HttpPolicy = field(default_factory=HttpPolicy)

    def agent_name(self, agent_index: int) -> str:
        """The name agent `agent_index` (0-based) registers under: sim-agent-1, -2, ..."""
        return f"{self.name_prefix}-{agent_index + 1}"


@dataclass(frozen=True)
class FleetStatus:
    """One look at the fleet for the status line."""

    elapsed: float
    total_agents: int
    online_agents: int
    total_consumers: int
    connected_consumers: int
    flapping_agents: int
    connect_failures: int
    messages: dict[str, int]


def format_status_line(status: FleetStatus) -> str:
    """One line: connected/total, flapping, messages per agent (the busiest first)."""
    total_messages = sum(status.messages.values())
    busiest = sorted(
        ((name, count) for name, count in status.messages.items() if count),
        key=lambda item: (-item[1], item[0]),
    )
    per_agent = " ".join(f"{name}={count}" for name, count in busiest[:STATUS_AGENT_LIMIT])
    if len(busiest) > STATUS_AGENT_LIMIT:
        per_agent += " ..."
    minutes, seconds = divmod(int(status.elapsed), 60)
    line = (
        f"[{minutes:02d}:{seconds:02d}] agents connected {status.online_agents}/"
        f"{status.total_agents}, consumers {status.connected_consumers}/"
        f"{status.total_consumers}, flapping {status.flapping_agents}, "
        f"connect failures {status.connect_failures}, messages {total_messages}"
    )
    return f"{line} ({per_agent})" if per_agent else line


class FleetSimulator:
    """Registers a fleet through the API, then keeps its STOMP consumers on the flap plan."""

    def __init__(self, config: SimulationConfig, *, write: Callable[[str], object]) -> None:
        self.config = config
        self._write = write
        self._stop = threading.Event()
        self._schedule = FlapSchedule(
            config.agent_count,
            share=config.flap_share,
            period_seconds=config.flap_seconds,
            seed=config.seed,
        )
        self._agents: list[list[SimulatedSubscription]] = []
        self._dispatch_api: AgentApiClient | None = None
        self.dispatch_failures = 0
        self._connect_failures = 0

    @property
    def flapping_agents(self) -> frozenset[int]:
        """Indexes of the agents that flap."""
        return self._schedule.flapping

    def stop(self) -> None:
        """Ask the run to end; safe from a signal handler or another thread."""
        self._stop.set()

    def run(self) -> None:
        """Register, then simulate until the duration passes or stop() is called."""
        try:
            self.register_fleet()
        except SimulationStopped:
            self._write("Stopped before every agent was registered.")
            return
        self._write(
            f"Registered {self.config.agent_count} agents on offering "
            f"{self.config.offering_uuid}; flapping: "
            f"{', '.join(self._names(self.flapping_agents)) or 'none'}."
        )
        started = time.monotonic()
        next_status = started
        try:
            with ThreadPoolExecutor(max_workers=CONNECT_WORKERS) as pool:
                while not self._stop.is_set():
                    elapsed = time.monotonic() - started
                    if self.config.duration is not None and elapsed >= self.config.duration:
                        break
                    self._reconcile(elapsed, pool=pool)
                    now = time.monotonic()
                    if now >= next_status:
                        self._write(format_status_line(self.status(elapsed)))
                        next_status = max(next_status + self.config.status_seconds, now)
                    self._stop.wait(TICK_SECONDS)
        finally:
            self.disconnect_all()
            self._write(format_status_line(self.status(time.monotonic() - started)))

    def _record_dispatch(self, identity_uuid: str) -> None:
        """Tell the service the agent handled one event (POST /api/agents/record_dispatch/)."""
        if self._dispatch_api is None:
            self._dispatch_api = AgentApiClient(
                self.config.base_url,
                token=self.config.token,
                stop=self._stop,
                policy=self.config.http,
                report=self._write,
            )
        try:
            self._dispatch_api.post(
                "/api/agents/record_dispatch/",
                body={"instance_id": identity_uuid, "succeeded": True},
            )
        except SimulationError as exc:
            self.dispatch_failures += 1
            self._write(f"recording a dispatch of {identity_uuid} failed: {exc}")

    def register_fleet(self) -> None:
        """Register every agent through the API (idempotent) and build its consumers."""
        api = AgentApiClient(
            self.config.base_url,
            token=self.config.token,
            stop=self._stop,
            policy=self.config.http,
            report=self._write,
        )
        try:
            self._agents = []
            for agent_index in range(self.config.agent_count):
                if self._stop.is_set():
                    raise SimulationStopped("stopped during registration")
                agent = register_agent(
                    api,
                    offering_uuid=self.config.offering_uuid,
                    name=self.config.agent_name(agent_index),
                    object_types=self.config.object_types,
                )
                on_message = functools.partial(self._record_dispatch, agent.identity_uuid)
                self._agents.append(
                    [
                        SimulatedSubscription(
                            StompConsumer(
                                endpoint,
                                broker=self.config.stomp,
                                password=self.config.token,
                                on_message=on_message,
                            )
                        )
                        for endpoint in agent.subscriptions
                    ]
                )
        finally:
            api.close()

    def status(self, elapsed: float) -> FleetStatus:
        """Connected agents and consumers, failures and messages counted so far."""
        return FleetStatus(
            elapsed=elapsed,
            total_agents=len(self._agents),
            online_agents=sum(
                any(item.consumer.is_connected for item in subscriptions)
                for subscriptions in self._agents
            ),
            total_consumers=sum(len(subscriptions) for subscriptions in self._agents),
            connected_consumers=sum(
                item.consumer.is_connected for item in self._all_subscriptions()
            ),
            flapping_agents=len(self.flapping_agents),
            connect_failures=self._connect_failures,
            messages=self.message_counts(),
        )

    def message_counts(self) -> dict[str, int]:
        """Messages received per agent name, over every connection it has had."""
        return {
            self.config.agent_name(agent_index): sum(
                item.consumer.message_count for item in subscriptions
            )
            for agent_index, subscriptions in enumerate(self._agents)
        }

    def disconnect_all(self) -> None:
        """Close every consumer's connection (each close bounded)."""
        for item in self._all_subscriptions():
            item.consumer.disconnect(timeout=STOMP_DISCONNECT_TIMEOUT_SECONDS)
        if self._dispatch_api is not None:
            self._dispatch_api.close()
            self._dispatch_api = None

    def _reconcile(self, elapsed: float, *, pool: ThreadPoolExecutor) -> None:
        """Disconnect consumers the plan takes offline; connect, concurrently, the due ones."""
        now = time.monotonic()
        due: list[SimulatedSubscription] = []
        for agent_index, subscriptions in enumerate(self._agents):
            is_online = self._schedule.is_online(agent_index, elapsed=elapsed)
            for item in subscriptions:
                consumer = item.consumer
                if consumer.was_dropped():
                    # Counted like a refusal, so a broker that accepts and drops at once
                    # is not hammered.
                    self._record_failure(item, now, reason=f"{item.name}: dropped by the broker")
                if consumer.is_connected and not is_online:
                    consumer.disconnect(timeout=STOMP_DISCONNECT_TIMEOUT_SECONDS)
                elif not consumer.is_connected and is_online and item.retry.is_due(now):
                    due.append(item)
        for item, error in zip(due, pool.map(self._try_connect, due), strict=True):
            if error is None:
                item.retry.record_success(time.monotonic())
            else:
                self._record_failure(item, time.monotonic(), reason=str(error))

    def _try_connect(self, item: SimulatedSubscription) -> StompConnectError | None:
        try:
            item.consumer.connect(timeout=STOMP_CONNECT_TIMEOUT_SECONDS)
        except StompConnectError as exc:
            return exc
        return None

    def _record_failure(self, item: SimulatedSubscription, now: float, *, reason: str) -> None:
        item.consumer.disconnect(timeout=STOMP_DISCONNECT_TIMEOUT_SECONDS)
        delay = item.retry.record_failure(now)
        self._connect_failures += 1
        self._write(f"STOMP {reason}; retrying in {delay:.0f} s")

    def _all_subscriptions(self) -> list[SimulatedSubscription]:
        return [item for subscriptions in self._agents for item in subscriptions]

    def _names(self, agent_indexes: frozenset[int]) -> list[str]:
        return [self.config.agent_name(index) for index in sorted(agent_indexes)]


def parse_object_types(values: Sequence[str]) -> tuple[str, ...]:
    """Object types from a comma-separated option, in order, without repeats."""
    types = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return tuple(dict.fromkeys(types))
