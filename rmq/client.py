"""One HTTP session to the RabbitMQ management API, with timeouts on every call.

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
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from django.conf import settings

from rmq.exceptions import BrokerResponseError, BrokerUnavailable

logger = logging.getLogger(__name__)

JSONValue = Any


@dataclass(frozen=True, slots=True)
class BrokerCall:
    """One finished management API call: what and when, never a URL or a credential."""

    method: str
    resource: str
    started_at: float  # time.monotonic()
    seconds: float


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
def _reported_call(method: str, resource: str) -> Iterator[None]:
    listener = _call_listener.get()
    started = time.monotonic()
    try:
        yield
    finally:
        if listener is not None:
            listener(BrokerCall(method, resource, started, time.monotonic() - started))


class ManagementClient:
    """A client of the management API; credentials stay inside the session."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str,
        password: str,
        connect_timeout: float,
        read_timeout: float,
        get_retries: int = 0,
        max_response_bytes: int = 64 * 1024 * 1024,
        snapshot_read_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
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
            settings.RABBITMQ_MANAGEMENT_URL,
            settings.RABBITMQ_USER,
            settings.RABBITMQ_PASSWORD,
            settings.RABBITMQ_CONNECT_TIMEOUT,
            settings.RABBITMQ_READ_TIMEOUT,
            settings.RABBITMQ_GET_RETRIES,
            settings.RABBITMQ_MAX_RESPONSE_BYTES,
            settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT,
        )

    def build_url(self, segments: Sequence[str]) -> str:
        """Join path segments under /api/, each one URL-encoded (the default vhost is '/')."""
        return self.base_url + "/api/" + "/".join(quote(segment, safe="") for segment in segments)

    def get_json(
        self,
        segments: Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> JSONValue:
        """GET a management resource and return its parsed JSON body.

        `timeout` (connect, read) replaces the client's own for this call; the whole
        answer must arrive within their sum.
        """
        call_timeout = timeout or self.timeout
        attempts = 1 + self.get_retries
        for attempt in range(attempts):
            deadline = time.monotonic() + call_timeout[0] + call_timeout[1]
            try:
                with _reported_call("GET", segments[0]):
                    response = self._send(
                        "GET", segments, params=params, stream=True, timeout=call_timeout
                    )
                    body = self._read_body(response, deadline=deadline, resource=segments[0])
            except BrokerUnavailable as exc:
                # Retry only a refused/reset connection: a timeout already spent the budget.
                cause = exc.__cause__
                is_refused = isinstance(cause, requests.ConnectionError) and not isinstance(
                    cause, requests.Timeout
                )
                if attempt + 1 < attempts and is_refused:
                    continue
                raise
            try:
                return json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise BrokerResponseError(
                    f"management API returned a body that is not JSON for {segments[0]}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_body(self, response: requests.Response, *, deadline: float, resource: str) -> bytes:
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
                    raise BrokerUnavailable(
                        f"RabbitMQ management API did not finish answering {resource} in time"
                    )
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            logger.warning("broker management API answer broke off: GET %s", resource)
            raise BrokerUnavailable("RabbitMQ management API answer broke off") from exc
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
        """PUT (create or update) a management resource; never retried."""
        with _reported_call("PUT", segments[0] if segments else ""):
            self._send("PUT", segments, body=body, headers=headers)

    def delete(self, segments: Sequence[str]) -> None:
        """DELETE a management resource; a missing one counts as deleted."""
        with _reported_call("DELETE", segments[0] if segments else ""):
            self._send("DELETE", segments, allow_not_found=True)

    def _send(
        self,
        method: str,
        segments: Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, JSONValue] | None = None,
        allow_not_found: bool = False,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        resource = segments[0] if segments else ""
        try:
            response = self.session.request(
                method,
                self.build_url(segments),
                params=params,
                json=body,
                headers=headers,
                timeout=timeout or self.timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            logger.warning("broker management API timed out: %s %s", method, resource)
            raise BrokerUnavailable("RabbitMQ management API did not answer in time") from exc
        except requests.RequestException as exc:
            logger.warning("broker management API unreachable: %s %s", method, resource)
            raise BrokerUnavailable("RabbitMQ management API is unreachable") from exc
        status = response.status_code
        if status == 404 and allow_not_found:
            return response
        if status in (401, 403):
            logger.warning("broker management API refused our credentials (%s)", status)
            raise BrokerUnavailable("RabbitMQ management API rejected the configured credentials")
        if status >= 500:
            logger.warning("broker management API failed: %s %s -> %s", method, resource, status)
            raise BrokerUnavailable(f"RabbitMQ management API failed with HTTP {status}")
        if status >= 400:
            logger.warning("broker management API error: %s %s -> %s", method, resource, status)
            raise BrokerResponseError(f"RabbitMQ management API answered HTTP {status}")
        return response


@functools.lru_cache(maxsize=4)
def _client_for(
    base_url: str,
    user: str,
    password: str,
    connect_timeout: float,
    read_timeout: float,
    get_retries: int,
    max_response_bytes: int,
    snapshot_read_timeout: float,
) -> ManagementClient:
    return ManagementClient(
        base_url,
        user=user,
        password=password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        get_retries=get_retries,
        max_response_bytes=max_response_bytes,
        snapshot_read_timeout=snapshot_read_timeout,
    )
