"""One HTTP session to the RabbitMQ management API, with timeouts on every call.

The API may be served by several nodes of a cluster: each call goes to the first node not
remembered as down (rmq/nodes.py), and a node that refuses, times out, breaks off or
fails (5xx) is remembered as down and the call goes on to the next one. Every call we
make is an idempotent GET, PUT or DELETE, so asking a second node is safe. A rejected
credential or a 4xx is the same on every node and is not tried elsewhere. A node asked
after another failed gets at least the connect timeout plus the client's read timeout,
granted once per call: a call takes at most `call_bound()` (budget + connect + read).

Every call, failed ones included, is reported to the listener of the current context
(`listen_to_broker_calls`), so a caller can tell how long it waited for the broker
without this package knowing who asks.
"""

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import urllib3
from django.conf import settings

from rmq.exceptions import BrokerResponseError, BrokerUnavailable
from rmq.nodes import PROCESS_NODE_MEMORY, NodeMemory, node_label

logger = logging.getLogger(__name__)

JSONValue = Any
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BrokerCall:
    """One finished management API call: what and when, never a URL or a credential."""

    method: str
    resource: str
    started_at: float  # time.monotonic()
    seconds: float
    node: str | None = None  # host:port of the node asked


BrokerCallListener = Callable[[BrokerCall], None]
_call_listener: ContextVar[BrokerCallListener | None] = ContextVar(
    "rmq_broker_call_listener", default=None
)


@contextmanager
def listen_to_broker_calls(listener: BrokerCallListener) -> Iterator[None]:
    """Report every management API call made in this block to `listener`, including those
    made by threads started with a copy of this context (contextvars.copy_context)."""
    token = _call_listener.set(listener)
    try:
        yield
    finally:
        _call_listener.reset(token)


@contextmanager
def _reported_call(method: str, resource: str, node: str) -> Iterator[None]:
    listener = _call_listener.get()
    started = time.monotonic()
    try:
        yield
    finally:
        if listener is not None:
            listener(BrokerCall(method, resource, started, time.monotonic() - started, node))


class NodeUnavailable(BrokerUnavailable):
    """One node refused, timed out, broke off or failed (5xx): another may answer."""

    def __init__(self, message: str, *, is_refused: bool = False) -> None:
        super().__init__(message)
        self.is_refused = is_refused


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """A parsed answer and the node (host:port) that gave it."""

    body: JSONValue
    node: str


class ManagementClient:
    """A client of the management API of one node or a cluster's nodes; credentials stay
    inside the session."""

    def __init__(
        self,
        base_urls: str | Sequence[str],
        *,
        user: str,
        password: str,
        connect_timeout: float,
        read_timeout: float,
        get_retries: int = 0,
        max_response_bytes: int = 64 * 1024 * 1024,
        snapshot_read_timeout: float | None = None,
        node_down_seconds: float = 10.0,
        node_memory: NodeMemory | None = None,
    ) -> None:
        urls = (base_urls,) if isinstance(base_urls, str) else tuple(base_urls)
        if not urls:
            raise ValueError("a management client needs at least one node URL")
        self.base_urls = tuple(url.rstrip("/") for url in urls)
        self.base_url = self.base_urls[0]
        # host:port of each node, in configured order: what logs, answers and metrics name.
        self.node_labels = tuple(node_label(url) for url in self.base_urls)
        if len(set(self.node_labels)) != len(self.node_labels):
            # One label per node: two URLs of one host:port would collapse into one node.
            raise ValueError("two management node URLs name the same host and port")
        self._url_of = dict(zip(self.node_labels, self.base_urls, strict=True))
        self.node_down_seconds = node_down_seconds
        self.node_memory = node_memory or PROCESS_NODE_MEMORY
        # The node that answered this client's latest successful call (any thread).
        self.answered_by: str | None = None
        self.max_response_bytes = max_response_bytes
        self.user = user
        self.timeout = (connect_timeout, read_timeout)
        # The bulk listings of a snapshot may take longer than any other call.
        self.snapshot_timeout = (
            connect_timeout,
            read_timeout if snapshot_read_timeout is None else snapshot_read_timeout,
        )
        self.get_retries = get_retries
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.headers.update({"Accept": "application/json"})

    @classmethod
    def from_settings(cls) -> "ManagementClient":
        """The process's client for the RABBITMQ_* settings; its session pools connections."""
        return _client_for(
            tuple(settings.RABBITMQ_MANAGEMENT_URLS),
            settings.RABBITMQ_USER,
            settings.RABBITMQ_PASSWORD,
            settings.RABBITMQ_CONNECT_TIMEOUT,
            settings.RABBITMQ_READ_TIMEOUT,
            settings.RABBITMQ_GET_RETRIES,
            settings.RABBITMQ_MAX_RESPONSE_BYTES,
            settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT,
            settings.RABBITMQ_NODE_DOWN_SECONDS,
        )

    def build_url(self, segments: Sequence[str], *, base_url: str | None = None) -> str:
        """Join path segments under /api/, each one URL-encoded (the default vhost is '/');
        on the first node unless `base_url` names another."""
        base = self.base_url if base_url is None else base_url
        return base + "/api/" + "/".join(quote(segment, safe="") for segment in segments)

    def nodes_remembered_down(self) -> tuple[str, ...]:
        """The configured nodes (host:port) this process currently remembers as down."""
        return tuple(label for label in self.node_labels if self.node_memory.is_down(label))

    def get_json(
        self,
        segments: Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> JSONValue:
        """GET a management resource and return its parsed JSON body.

        `timeout` (connect, read) replaces the client's own for this call; the whole
        answer from one node must arrive within their sum.
        """
        return self.fetch_json(segments, params=params, timeout=timeout).body

    def fetch_json(
        self,
        segments: Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> NodeAnswer:
        """GET a management resource: its parsed JSON body and the node that answered."""
        call_timeout = timeout or self.timeout
        attempts = 1 + self.get_retries
        for attempt in range(attempts):
            try:
                body, node = self._ask_nodes(
                    "GET",
                    segments,
                    lambda base_url, node_timeout, deadline: self._get_body(
                        base_url, segments, params, node_timeout, deadline
                    ),
                    timeout=call_timeout,
                )
            except NodeUnavailable as exc:
                # Retry only when every node refused: a timeout already spent the budget.
                if attempt + 1 < attempts and exc.is_refused:
                    continue
                raise
            try:
                return NodeAnswer(body=json.loads(body), node=node)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise BrokerResponseError(
                    f"management API returned a body that is not JSON for {segments[0]}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_body(
        self,
        base_url: str,
        segments: Sequence[str],
        params: Mapping[str, str] | None,
        timeout: tuple[float, float],
        deadline: float,
    ) -> bytes:
        response = self._send(
            "GET", segments, base_url=base_url, params=params, stream=True, timeout=timeout
        )
        return self._read_body(
            response, deadline=deadline, resource=segments[0], node=node_label(base_url)
        )

    def _ask_nodes(
        self,
        method: str,
        segments: Sequence[str],
        call: Callable[[str, tuple[float, float], float], T],
        *,
        timeout: tuple[float, float],
    ) -> tuple[T, str]:
        """`call(base_url, timeout, deadline)` on each node to ask in turn until one
        answers; a node that fails is remembered as down. Raise the last node's failure
        when none answers.

        The first node gets the call's budget (connect + read). A node asked after another
        failed gets what is left of it, but at least the connect timeout plus the client's
        own read timeout (RABBITMQ_READ_TIMEOUT, or the call's if shorter): a node that
        accepted and never answered must not leave the next one too little for a large
        listing. The fallback allowance is granted once, so a whole call takes at most
        `call_bound(timeout)`; a node not asked for lack of time is asked first by the
        next call, the ones that failed being remembered down.
        """
        resource = segments[0] if segments else ""
        failure: NodeUnavailable | None = None
        is_refused = True
        connect, read = timeout
        fallback = connect + min(read, self.timeout[1])
        deadline = time.monotonic() + connect + read
        last_deadline = deadline + fallback
        for label in self.node_memory.order(self.node_labels):
            node_timeout, node_deadline = timeout, deadline
            if failure is not None:
                now = time.monotonic()
                node_deadline = min(max(deadline, now + fallback), last_deadline)
                remaining = node_deadline - now
                if remaining <= 0:
                    is_refused = False
                    break
                # Connect and read within what is left, their sum no more than it.
                node_timeout = (
                    (connect, min(read, remaining - connect))
                    if remaining > connect
                    else (remaining, remaining)
                )
            failures_seen = self.node_memory.failures_of(label)
            try:
                with _reported_call(method, resource, label):
                    result = call(self._url_of[label], node_timeout, node_deadline)
            except NodeUnavailable as exc:
                self.node_memory.mark_down(label, seconds=self.node_down_seconds)
                failure, is_refused = exc, is_refused and exc.is_refused
                continue
            self.node_memory.mark_up(label, failures_seen=failures_seen)
            self.answered_by = label
            return result, label
        if failure is None:  # pragma: no cover - order() never returns no node
            raise BrokerUnavailable("no RabbitMQ management node to ask")
        failure.is_refused = is_refused
        raise failure

    def call_bound(self, timeout: tuple[float, float] | None = None) -> float:
        """The longest one call with `timeout` (connect, read; the client's by default)
        takes over all nodes: its budget plus one fallback allowance for a next node."""
        connect, read = timeout or self.timeout
        return connect + read + connect + min(read, self.timeout[1])

    def _read_body(
        self, response: requests.Response, *, deadline: float, resource: str, node: str
    ) -> bytes:
        """Read a streamed body within the call's total time budget and size cap.

        The read timeout bounds each socket read, not the whole answer: a server that
        drips bytes would hold the worker forever without this deadline.
        """
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(65536, decode_content=True):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise BrokerResponseError(
                        f"management API answer for {resource} exceeds "
                        f"{self.max_response_bytes} bytes"
                    )
                if time.monotonic() > deadline:
                    raise NodeUnavailable(
                        f"RabbitMQ management API did not finish answering {resource} in time",
                        is_refused=False,
                    )
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            logger.warning("broker management API answer broke off: GET %s on %s", resource, node)
            raise NodeUnavailable(
                "RabbitMQ management API answer broke off", is_refused=False
            ) from exc
        finally:
            response.close()
        return b"".join(chunks)

    def put(
        self,
        segments: Sequence[str],
        *,
        body: Mapping[str, JSONValue],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """PUT (create or update) a management resource; never retried on the same node."""
        self._ask_nodes(
            "PUT",
            segments,
            lambda base_url, node_timeout, _deadline: self._send(
                "PUT", segments, base_url=base_url, body=body, headers=headers, timeout=node_timeout
            ),
            timeout=self.timeout,
        )

    def delete(self, segments: Sequence[str]) -> None:
        """DELETE a management resource; a missing one counts as deleted."""
        self._ask_nodes(
            "DELETE",
            segments,
            lambda base_url, node_timeout, _deadline: self._send(
                "DELETE", segments, base_url=base_url, allow_not_found=True, timeout=node_timeout
            ),
            timeout=self.timeout,
        )

    def _send(
        self,
        method: str,
        segments: Sequence[str],
        *,
        base_url: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, JSONValue] | None = None,
        allow_not_found: bool = False,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        resource = segments[0] if segments else ""
        node = node_label(base_url)
        try:
            response = self.session.request(
                method,
                self.build_url(segments, base_url=base_url),
                params=params,
                json=body,
                headers=headers,
                timeout=timeout or self.timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            logger.warning("broker management API timed out: %s %s on %s", method, resource, node)
            raise NodeUnavailable(
                "RabbitMQ management API did not answer in time", is_refused=False
            ) from exc
        except requests.RequestException as exc:
            logger.warning("broker management API unreachable: %s %s on %s", method, resource, node)
            raise NodeUnavailable(
                "RabbitMQ management API is unreachable", is_refused=True
            ) from exc
        status = response.status_code
        if status == 404 and allow_not_found:
            return response
        if status in (401, 403):
            logger.warning("broker management API refused our credentials (%s) on %s", status, node)
            raise BrokerUnavailable("RabbitMQ management API rejected the configured credentials")
        if status >= 500:
            logger.warning(
                "broker management API failed: %s %s -> %s on %s", method, resource, status, node
            )
            raise NodeUnavailable(
                f"RabbitMQ management API failed with HTTP {status}", is_refused=False
            )
        if status >= 400:
            logger.warning(
                "broker management API error: %s %s -> %s on %s", method, resource, status, node
            )
            raise BrokerResponseError(f"RabbitMQ management API answered HTTP {status}")
        return response


@functools.lru_cache(maxsize=4)
def _client_for(
    base_urls: tuple[str, ...],
    user: str,
    password: str,
    connect_timeout: float,
    read_timeout: float,
    get_retries: int,
    max_response_bytes: int,
    snapshot_read_timeout: float,
    node_down_seconds: float,
) -> ManagementClient:
    return ManagementClient(
        base_urls,
        user=user,
        password=password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        get_retries=get_retries,
        max_response_bytes=max_response_bytes,
        snapshot_read_timeout=snapshot_read_timeout,
        node_down_seconds=node_down_seconds,
    )
