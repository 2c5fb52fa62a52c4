"""One simulated site agent: the real agent's registration over HTTP and its STOMP consumers.

The fleet simulator drives this service from the outside, as waldur-site-agent 1.0.0 does:
it speaks HTTP to our own API with the owner's token (never to the broker's management
API) and consumes its queues over STOMP over WebSocket. Every network call is bounded.
"""

import contextlib
import datetime
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import stomp
import websocket
from stomp.exception import StompException

from marketplace.simulator.schedule import compute_backoff_delay

AGENT_VERSION = "1.0.0"
IDENTITIES_PATH = "/api/marketplace-site-agent-identities/"
SERVICES_PATH = "/api/marketplace-site-agent-services/"
SUBSCRIPTIONS_PATH = "/api/event-subscriptions/"
SERVICE_NAME = "event_process"
PROCESSOR_NAME = "OfferingOrderProcessor"
PROCESSOR_BACKEND = ("simulated", AGENT_VERSION)
SUBSCRIPTION_DESCRIPTION = "Event subscription created by the simulated site agent"
# Answers worth another attempt: a throttle, a proxy hiccup, the broker briefly away.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# The server sends a heart-beat this often, so a socket read never idles longer; the read
# timeout below can then also bound the WebSocket handshake without cutting idle links.
HEARTBEAT_MILLISECONDS = 5000
STOMP_SOCKET_TIMEOUT_SECONDS = 15.0
STOMP_LISTENER_NAME = "simulated-agent"


class SimulationError(Exception):
    """The simulator cannot go on: the API or the broker refused for good."""


class SimulationStopped(SimulationError):
    """A stop was requested while the simulator waited to retry."""


class AgentApiError(SimulationError):
    """Our API answered a registration call with an error that a retry will not fix."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {detail}")
        self.status = status


class StompConnectError(SimulationError):
    """A STOMP consumer could not connect (refused, rejected or timed out)."""


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry bounds of the calls to our API."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 30.0


class AgentApiClient:
    """The agent's HTTP client of our API: token auth, a timeout on every call, bounded retries."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        stop: threading.Event,
        policy: HttpPolicy,
        report: Callable[[str], object],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self._stop = stop
        self._report = report
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"agentstats-simulate-fleet/{AGENT_VERSION}",
            }
        )

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def get(self, path: str, *, params: Mapping[str, str]) -> Any:
        """GET a path and return the parsed JSON body."""
        return self._send("GET", path, params=params)

    def post(self, path: str, *, body: Mapping[str, Any]) -> Any:
        """POST a JSON body and return the parsed JSON answer."""
        return self._send("POST", path, json=body)

    def put(self, path: str, *, body: Mapping[str, Any]) -> Any:
        """PUT a JSON body and return the parsed JSON answer."""
        return self._send("PUT", path, json=body)

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        # Writes are retried too: every registration call is idempotent by design, so a
        # repeat after a timeout or a 503 converges on the same rows.
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                response = self._session.request(
                    method, self.base_url + path, timeout=timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"{method} {path} failed: {type(exc).__name__}"
                retry_after = None
            else:
                if response.status_code < 400:
                    return _json_body(method, path, response)
                detail = _error_detail(response)
                if response.status_code not in RETRYABLE_STATUSES:
                    raise AgentApiError(method, path, response.status_code, detail)
                failure = f"{method} {path} answered {response.status_code}: {detail}"
                retry_after = _retry_after_seconds(response)
            if attempt == self.policy.max_attempts:
                raise SimulationError(f"{failure} (gave up after {attempt} attempts)")
            delay = compute_backoff_delay(
                attempt, base=self.policy.backoff_base, cap=self.policy.backoff_cap
            )
            if retry_after is not None:
                delay = min(max(delay, retry_after), self.policy.backoff_cap)
            self._report(f"{failure}; retrying in {delay:.0f} s")
            if self._stop.wait(delay):
                raise SimulationStopped("stopped while waiting to retry")
        raise AssertionError("unreachable: the loop returns or raises")


def _json_body(method: str, path: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise AgentApiError(method, path, response.status_code, "not a JSON body") from exc


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


def _retry_after_seconds(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class SubscriptionEndpoint:
    """Where one subscription is consumed: vhost, broker user and queue."""

    agent_name: str
    object_type: str
    subscription_uuid: str
    vhost: str
    queue_name: str


@dataclass(frozen=True)
class RegisteredAgent:
    """An agent as the API registered it, with one endpoint per observed object type."""

    name: str
    identity_uuid: str
    subscriptions: tuple[SubscriptionEndpoint, ...]


def build_identity_body(*, offering_uuid: str, name: str) -> dict[str, Any]:
    """The identity the real agent 1.0.0 reports: naive local restart time, empty config."""
    return {
        "offering": offering_uuid,
        "name": name,
        "version": AGENT_VERSION,
        "dependencies": [
            {"package": "waldur-site-agent", "entry_point": "waldur_site_agent", "version": "1.0.0"}
        ],
        "config_file_path": "",
        "config_file_content": "",
        # Naive local time, as the agent sends it; the server takes it as UTC.
        "last_restarted": datetime.datetime.now().isoformat(),
    }


def register_agent(
    api: AgentApiClient, *, offering_uuid: str, name: str, object_types: Sequence[str]
) -> RegisteredAgent:
    """Register one agent the way waldur-site-agent 1.0.0 does on start; idempotent."""
    identity = _register_identity(api, offering_uuid=offering_uuid, name=name)
    identity_path = f"{IDENTITIES_PATH}{identity['uuid']}/"
    service = api.post(
        f"{identity_path}register_service/", body={"name": SERVICE_NAME, "mode": SERVICE_NAME}
    )
    backend_type, backend_version = PROCESSOR_BACKEND
    api.post(
        f"{SERVICES_PATH}{service['uuid']}/register_processor/",
        body={
            "name": PROCESSOR_NAME,
            "backend_type": backend_type,
            "backend_version": backend_version,
        },
    )
    endpoints = []
    for object_type in object_types:
        subscription = api.post(
            f"{identity_path}register_event_subscription/",
            body={"observable_object_type": object_type, "description": SUBSCRIPTION_DESCRIPTION},
        )
        subscription_hex = subscription["uuid"].replace("-", "")
        queue = api.post(
            f"{SUBSCRIPTIONS_PATH}{subscription_hex}/create_queue/",
            body={"offering_uuid": offering_uuid, "object_type": object_type},
        )
        endpoints.append(
            SubscriptionEndpoint(
                agent_name=name,
                object_type=object_type,
                subscription_uuid=subscription_hex,
                vhost=queue["vhost"],
                queue_name=queue["queue_name"],
            )
        )
    return RegisteredAgent(
        name=name, identity_uuid=str(identity["uuid"]), subscriptions=tuple(endpoints)
    )


def _register_identity(api: AgentApiClient, *, offering_uuid: str, name: str) -> dict[str, Any]:
    """Look the name up, then update the agent found on this offering or create it."""
    body = build_identity_body(offering_uuid=offering_uuid, name=name)
    found = api.get(IDENTITIES_PATH, params={"name": name})
    wanted = offering_uuid.replace("-", "")
    mine = [item for item in found if str(item["offering"]).replace("-", "") == wanted]
    if mine:
        identity_hex = str(mine[0]["uuid"]).replace("-", "")
        return dict(api.put(f"{IDENTITIES_PATH}{identity_hex}/", body=body))
    return dict(api.post(IDENTITIES_PATH, body=body))


@dataclass(frozen=True)
class StompEndpoint:
    """The broker's STOMP-over-WebSocket listener."""

    host: str
    port: int
    path: str


class _ConsumerListener(stomp.ConnectionListener):
    """Tracks one connection's state and counts the messages it receives."""

    def __init__(self, on_message: Callable[[], object] | None = None) -> None:
        self.settled = threading.Event()
        self.is_connected = False
        self.error = ""
        self.messages = 0
        self._lock = threading.Lock()
        self._on_message = on_message

    def on_connected(self, frame: Any) -> None:
        self.is_connected = True
        self.settled.set()

    def on_error(self, frame: Any) -> None:
        self.error = str(frame.headers.get("message", "error frame"))
        self.settled.set()

    def on_disconnected(self) -> None:
        self.is_connected = False
        self.settled.set()

    def on_message(self, frame: Any) -> None:
        with self._lock:
            self.messages += 1
        if self._on_message is not None:
            self._on_message()


class StompConsumer:
    """One subscription's consumer: a fresh STOMP-over-WebSocket connection per connect."""

    def __init__(
        self,
        endpoint: SubscriptionEndpoint,
        *,
        broker: StompEndpoint,
        password: str,
        on_message: Callable[[], object] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.broker = broker
        self._password = password
        self._on_message = on_message
        self._connection: Any = None
        self._listener: _ConsumerListener | None = None
        self._is_closing = False
        self._earlier_messages = 0

    @property
    def is_connected(self) -> bool:
        """Whether the broker holds this consumer's connection now."""
        return self._listener is not None and self._listener.is_connected

    @property
    def message_count(self) -> int:
        """Messages received over every connection this consumer has had."""
        current = self._listener.messages if self._listener is not None else 0
        return self._earlier_messages + current

    def was_dropped(self) -> bool:
        """Whether the last connection ended without this consumer closing it."""
        return self._listener is not None and not self.is_connected and not self._is_closing

    def connect(self, *, timeout: float) -> None:
        """Log in as the subscription and subscribe to its queue (auto ack), within `timeout`."""
        listener = _ConsumerListener(self._on_message)
        connection = stomp.WSStompConnection(
            host_and_ports=[(self.broker.host, self.broker.port)],
            ws_path=self.broker.path,
            vhost=self.endpoint.vhost,
            reconnect_attempts_max=1,
            timeout=STOMP_SOCKET_TIMEOUT_SECONDS,
            heartbeats=(HEARTBEAT_MILLISECONDS, HEARTBEAT_MILLISECONDS),
        )
        connection.set_listener(STOMP_LISTENER_NAME, listener)
        if self._listener is not None:
            self._earlier_messages += self._listener.messages
        self._connection, self._listener, self._is_closing = connection, listener, False
        try:
            connection.connect(
                username=self.endpoint.subscription_uuid, passcode=self._password, wait=False
            )
            # stomp.py's own wait has no deadline; wait on the listener instead.
            is_settled = listener.settled.wait(timeout)
            if is_settled and listener.is_connected:
                connection.subscribe(
                    destination=f"/amq/queue/{self.endpoint.queue_name}", id="1", ack="auto"
                )
                return
        except (StompException, OSError, websocket.WebSocketException) as exc:
            self._abandon()
            raise StompConnectError(
                f"{self._describe()}: cannot reach ws://{self.broker.host}:{self.broker.port}"
                f"{self.broker.path} ({type(exc).__name__})"
            ) from exc
        self._abandon()
        if not is_settled:
            raise StompConnectError(f"{self._describe()}: no CONNECTED frame within {timeout} s")
        raise StompConnectError(f"{self._describe()}: {listener.error or 'closed by the broker'}")

    def disconnect(self, *, timeout: float) -> None:
        """Send DISCONNECT and wait (bounded) for the socket to close; force it after that."""
        connection, listener = self._connection, self._listener
        if connection is None or listener is None:
            return
        self._is_closing = True
        if listener.is_connected:
            listener.settled.clear()
            # The socket is closed below whether DISCONNECT goes out or not.
            with contextlib.suppress(StompException, OSError, websocket.WebSocketException):
                connection.disconnect()
            listener.settled.wait(timeout)
        self._abandon()

    def _abandon(self) -> None:
        self._is_closing = True
        if self._connection is not None:
            self._connection.transport.disconnect_socket()

    def _describe(self) -> str:
        return f"{self.endpoint.agent_name}/{self.endpoint.object_type}"
