"""One log line per request, which a machine can read with LOG_FORMAT=json.

Each line (logger `agentstats.requests`) carries the request id, the caller's user uuid,
method, path, status, duration_ms and broker_wait_ms / broker_calls: the wall time during
which at least one RabbitMQ management call of this request was in flight (concurrent
calls overlap, so they are not added up), heard through rmq's call listener. A request
that shares a cached snapshot makes no call and waited 0 ms here (its Server-Timing header
says how long it waited for another request's).

Never logged: headers (Authorization among them), the query string, the body, usernames
or tokens. The probes (/healthz, /readyz) are not logged: orchestrators call them every
few seconds.
"""

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from agentstats.api.health import PROBE_PATHS
from rmq.client import BrokerCall, listen_to_broker_calls

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is a plain token of at most 128 characters (a uuid, a
# proxy's or a load balancer's id); anything else is replaced, never logged.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MAX_LOGGED_PATH = 1000

logger = logging.getLogger("agentstats.requests")
_current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestLogMiddleware:
    """Give each request an id (echoed as X-Request-ID) and log one line when it ends."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
        calls = BrokerCallTally()
        # Kept until the response is closed (request_finished): Django logs its own
        # line for an error response after the middleware has returned.
        _current_request_id.set(request_id)
        started = time.monotonic()
        with listen_to_broker_calls(calls.add):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        if request.path not in PROBE_PATHS:
            _log_request(request, response, request_id, time.monotonic() - started, calls)
        return response


def forget_request_id(**kwargs: object) -> None:
    """The request is over (request_finished): later lines belong to no request."""
    _current_request_id.set(None)


request_finished.connect(forget_request_id, dispatch_uid="agentstats.request_log")


class RequestContextFilter(logging.Filter):
    """Stamp every log record made while a request is served with its request id, and
    drop the request object Django's own loggers attach (django.request, django.server):
    a JSON formatter would write its repr, which holds the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current_request_id.get()
        record.__dict__.pop("request", None)
        return True


class BrokerCallTally:
    """The broker calls of one request (some made by its worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[BrokerCall] = []

    def add(self, call: BrokerCall) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def count(self) -> int:
        return len(self._calls)

    def measure_wait(self) -> float:
        """Seconds during which at least one call was in flight."""
        waited, reached = 0.0, float("-inf")
        spans = sorted((call.started_at, call.started_at + call.seconds) for call in self._calls)
        for start, end in spans:
            if end > reached:
                waited += end - max(start, reached)
                reached = end
        return waited


def choose_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one (32 hex digits)."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _log_request(
    request: HttpRequest,
    response: HttpResponse,
    request_id: str,
    seconds: float,
    calls: BrokerCallTally,
) -> None:
    path = request.path[:_MAX_LOGGED_PATH]
    duration_ms = round(seconds * 1000, 1)
    level = logging.WARNING if response.status_code >= 500 else logging.INFO
    logger.log(
        level,
        "%s %s %s %.1fms",
        request.method,
        path,
        response.status_code,
        duration_ms,
        extra={
            "request_id": request_id,
            "user_id": _find_user_id(request),
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "broker_wait_ms": round(calls.measure_wait() * 1000, 1),
            "broker_calls": calls.count,
        },
    )


def _find_user_id(request: HttpRequest) -> str | None:
    """The authenticated caller's uuid, if the request already knows it: a user nobody
    looked up is not looked up here (that would cost a query, or fail in an outage)."""
    user = getattr(request, "user", None)
    if user is None or (
        isinstance(user, SimpleLazyObject) and getattr(user, "_wrapped", None) is empty
    ):
        return None
    if not user.is_authenticated:
        return None
    return str(user.uuid)
