"""The container's health checks, as docker-compose.yml and the Dockerfile declare them."""

import json
import re

import yaml

from tests.kit.paths import ROOT

APP_PORT_URL = "http://127.0.0.1:8000"


def read_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_healthcheck(service: str) -> list[str]:
    """The `test` of a compose service's healthcheck (exec form: ["CMD", argv...])."""
    return read_compose()["services"][service]["healthcheck"]["test"]


def dockerfile_healthcheck() -> list[str]:
    """The Dockerfile HEALTHCHECK's command, in exec form (the JSON array after CMD)."""
    source = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?\bCMD (\[.*\])\s*$", source, flags=re.MULTILINE)
    assert found, "the Dockerfile declares no HEALTHCHECK in exec form"
    return json.loads(found.group(1))


def aim_at(argv: list[str], base_url: str) -> list[str]:
    """The same command with the container's own address replaced by `base_url`."""
    return [part.replace(APP_PORT_URL, base_url) for part in argv]
