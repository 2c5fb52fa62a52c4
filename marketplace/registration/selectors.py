"""What the registration path derives from an agent's own report: its compatibility."""

import re

from django.conf import settings

_VERSION_PREFIX = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def describe_agent_compatibility(version: str) -> dict[str, str]:
    """Compare an agent's version with AGENT_MINIMUM_VERSION."""
    minimum = settings.AGENT_MINIMUM_VERSION
    reported = _parse_version(version)
    if reported is None:
        return {
            "status": "unknown",
            "message": "The agent did not report a version this service can read.",
            "minimum_required": minimum,
        }
    required = _parse_version(minimum)
    if required is not None and reported < required:
        return {
            "status": "incompatible",
            "message": f"Agent version {version} is older than the minimum {minimum}.",
            "minimum_required": minimum,
        }
    return {"status": "compatible", "message": "", "minimum_required": minimum}


def _parse_version(version: str) -> tuple[int, ...] | None:
    match = _VERSION_PREFIX.match(version or "")
    if match is None:
        return None
    parts = [int(part) for part in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
