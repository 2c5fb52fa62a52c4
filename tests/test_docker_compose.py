"""docker-compose.yml stays consistent with the settings (no Docker engine runs in CI)."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import yaml
from django.urls import resolve

from tests.kit.container import (
    APP_PORT_URL,
    compose_healthcheck,
    dockerfile_healthcheck,
    read_compose,
)
from tests.kit.paths import ROOT


def read_settings_variables() -> set[str]:
    source = (ROOT / "agentstats" / "settings.py").read_text()
    return set(re.findall(r'(?:os\.environ\.get|_env_\w+)\(\s*"([A-Z_]+)"', source))


def read_server_variables() -> set[str]:
    """The variables the gunicorn configuration (read by the server, not Django) reads."""
    source = (ROOT / "agentstats" / "gunicorn_conf.py").read_text()
    return set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', source))


def read_image_command() -> str:
    """The Dockerfile's CMD, the shell line it runs (exec form: ["sh", "-c", line])."""
    found = re.search(r"^CMD (\[.*\])\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found, "the Dockerfile declares no CMD in exec form"
    argv = json.loads(found.group(1))
    assert argv[:2] == ["sh", "-c"]
    return argv[2]


def test_compose_app_sets_only_variables_the_settings_read():
    # given the compose file and the variables settings.py reads
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app_environment = compose["services"]["app"]["environment"]
    known = read_settings_variables() | read_server_variables()

    # then every variable given to the app is one the settings or the server read
    assert set(app_environment) <= known, set(app_environment) - known
    assert {"SECRET_KEY", "DATABASE_URL", "RABBITMQ_MANAGEMENT_URL"} <= set(app_environment)


def test_compose_points_the_app_at_its_own_postgres_and_rabbitmq():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app = compose["services"]["app"]["environment"]
    postgres = compose["services"]["postgres"]["environment"]
    rabbitmq = compose["services"]["rabbitmq"]["environment"]

    assert app["DATABASE_URL"] == (
        f"postgres://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert app["RABBITMQ_USER"] == rabbitmq["RABBITMQ_DEFAULT_USER"]
    assert app["RABBITMQ_PASSWORD"] == rabbitmq["RABBITMQ_DEFAULT_PASS"]
    assert app["DEBUG"] == "false"
    plugins = (ROOT / "docker" / "rabbitmq-enabled-plugins").read_text()
    for plugin in ("rabbitmq_management", "rabbitmq_web_stomp", "rabbitmq_stomp"):
        assert plugin in plugins


def test_deploy_checks_are_clean_when_configured_as_in_docker_compose():
    # given the app's environment from docker-compose.yml, with a real-looking secret
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {"PATH": os.environ["PATH"], **compose["services"]["app"]["environment"]}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)

    # when Django's deployment checklist runs
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then it finds nothing to warn about
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert "System check identified no issues" in completed.stdout


def test_compose_runs_the_connection_observer_with_the_apps_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    observer = compose["services"]["observer"]

    assert observer["command"] == ["python", "manage.py", "observe_connections"]
    assert observer["environment"] == compose["services"]["app"]["environment"]
    assert observer["environment"]["RABBITMQ_AMQP_URL"].startswith("amqp://agentstats:agentstats@")
    plugins = (ROOT / "docker" / "rabbitmq-enabled-plugins").read_text()
    assert "rabbitmq_event_exchange" in plugins


def test_compose_checks_the_app_is_ready_on_its_readiness_probe_with_python():
    # given the app's healthcheck (the slim image has python, not curl)
    test = compose_healthcheck("app")

    # then it asks /readyz on the app's own port, and the path is routed
    assert test[:3] == ["CMD", "python", "-c"]
    assert f"{APP_PORT_URL}/readyz'" in test[3]
    assert resolve("/readyz").url_name == "readyz"


def test_the_image_checks_liveness_on_the_liveness_probe_and_the_observer_opts_out():
    # given the Dockerfile's HEALTHCHECK, which every container of the image inherits
    test = dockerfile_healthcheck()
    compose = read_compose()

    # then it asks /healthz with python, and the observer (no web server) disables it
    assert test[:2] == ["python", "-c"]
    assert f"{APP_PORT_URL}/healthz'" in test[2]
    assert resolve("/healthz").url_name == "healthz"
    assert compose["services"]["observer"]["healthcheck"] == {"disable": True}
    assert compose["services"]["observer"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert compose["services"]["proxy"]["depends_on"]["app"]["condition"] == "service_healthy"


def test_the_probes_are_exempt_from_the_https_redirect_the_compose_app_runs_with():
    # given the compose app's environment: DEBUG off, so HTTPS redirects are on
    compose = read_compose()
    env = {"PATH": os.environ["PATH"], **compose["services"]["app"]["environment"]}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    code = (
        "from django.conf import settings; "
        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_REDIRECT_EXEMPT)"
    )

    # when the settings are read with it
    completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "agentstats.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # then the probes' plain-HTTP checks are not redirected
    assert completed.stdout.startswith("True ")
    for pattern in ("^healthz$", "^readyz$"):
        assert repr(pattern) in completed.stdout


def test_compose_serves_the_app_with_the_shipped_threaded_gunicorn_configuration():
    # given the image's command (compose's app does not override it) and compose's env
    compose = read_compose()
    app = compose["services"]["app"]
    command = read_image_command()
    env = {"PATH": os.environ["PATH"], **app["environment"]}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)

    # when gunicorn resolves the configuration that command names, with that environment
    assert "command" not in app
    assert "gunicorn -c python:agentstats.gunicorn_conf agentstats.wsgi" in command
    completed = subprocess.run(  # noqa: S603 - our own server's config check
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:agentstats.gunicorn_conf",
            "--print-config",
            "agentstats.wsgi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    resolved = {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in completed.stdout.splitlines())
    }

    # then the workers are threaded, as many as compose says, with several threads each
    assert resolved["worker_class"] == "gthread"
    assert int(resolved["workers"]) == int(app["environment"]["GUNICORN_WORKERS"])
    assert int(resolved["threads"]) == int(app["environment"]["GUNICORN_THREADS"]) > 1
