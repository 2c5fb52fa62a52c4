"""Readiness probe: GET /readyz is 200 when the database answers, else 503.

One query, the connection observer's row, both proves the database answers and tells the
broker's state as the observer last saw it. The broker itself is never asked (a call could
hang for its timeouts), and its state never fails readiness: a broker outage is answered
per request (`503 broker_unavailable`), and taking the app out of rotation would not
bring the broker back.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from marketplace.envelope.selectors import find_observer_status
from marketplace.models import ObserverStatus

logger = logging.getLogger(__name__)


@require_safe
def answer_readyz(request: HttpRequest) -> JsonResponse:
    """200 with the broker's last seen state when the database answers; 503 when not."""
    try:
        observer = find_observer_status()
    except DatabaseError as exc:
        # A database that refuses, or one not migrated yet: not ready either way.
        logger.warning("readiness: database unavailable (%s)", type(exc).__name__)
        unknown = describe_broker_state(None, now=timezone.now())
        body = {"status": "unavailable", "database": "unavailable", "broker": unknown}
        return JsonResponse(body, status=503)
    broker = describe_broker_state(observer, now=timezone.now())
    return JsonResponse({"status": "ready", "database": "ok", "broker": broker})


def describe_broker_state(observer: ObserverStatus | None, *, now: datetime) -> dict[str, Any]:
    """The broker as the observer last saw it: up, down, or unknown when the observer has
    never beaten or has been silent for OBSERVER_STALE_AFTER_SECONDS."""
    beat = observer.last_beat_at if observer else None
    if observer is None or beat is None:
        state, reason = "unknown", "observer_never_beat"
    elif now - beat > timedelta(seconds=settings.OBSERVER_STALE_AFTER_SECONDS):
        state, reason = "unknown", "observer_stale"
    elif observer.is_broker_available:
        state, reason = "up", "observer_connected"
    else:
        state, reason = "down", "observer_cannot_connect"
    return {
        "state": state,
        "reason": reason,
        "observer_last_beat_at": beat.isoformat() if beat else None,
    }
