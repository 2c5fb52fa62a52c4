"""Deployment checks of the core's configuration (`manage.py check --deploy`)."""

from typing import Any

from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

from agentstats.api.throttling import describe_process_local_throttle


@register(Tags.caches, Tags.security, deploy=True)
def check_throttle_store(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The write throttle must count in a store every server process shares."""
    problem = describe_process_local_throttle()
    if problem is None:
        return []
    hint = "Set CACHE_URL=redis://... (docker-compose does) so every worker shares the counts."
    return [CheckWarning(problem, hint=hint, id="agentstats.W001")]
