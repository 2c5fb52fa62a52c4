"""Deployment checks of /metrics's configuration (`manage.py check --deploy`)."""

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register


@register(Tags.security, deploy=True)
def check_metrics_allowed_networks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every METRICS_ALLOWED_NETWORKS entry must parse, or every scrape would fail."""
    errors: list[CheckMessage] = []
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"METRICS_ALLOWED_NETWORKS: {network!r} is not a network address or CIDR.",
                    hint="Use comma-separated CIDRs such as 10.0.0.0/8,::1/128.",
                    id="marketplace.E001",
                )
            )
    return errors
