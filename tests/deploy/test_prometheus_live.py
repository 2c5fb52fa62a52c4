"""A real Prometheus (Debian's) scrapes a live instance of the service on the real RabbitMQ:
the disconnect alert goes pending, then firing, when a real Web STOMP agent disconnects;
every rule evaluates without error; every Grafana panel query runs.

`SAVE_PROMETHEUS_RUN=1` writes what Prometheus' HTTP API answered (/api/v1/alerts and
/api/v1/rules) to docs/prometheus-live-run.json.
"""

import json
import os
import re
import uuid
from typing import Any

import yaml
from rest_framework.authtoken.models import Token

from marketplace.names import AgentServiceState
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    CustomerFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until
from tests.kit.prometheus import DASHBOARD, RULES, PrometheusServer, write_short_rules
from tests.kit.real_broker import provision_agent
from tests.kit.stomp_agent import connect_agent, subscribe_like_agent

WAIT_SECONDS = 120
# The test copy's `for:` of every alert: long enough to see the alert pending first.
HOLD = "10s"
ALERT = "AgentstatsAgentDisconnected"
RUN_RECORD = ROOT / "docs" / "prometheus-live-run.json"


def _provisioned_agent(tag: str) -> tuple[Any, Any, Any, Any]:
    """An agent of a new customer's offering, with its subscription and queue on the broker."""
    owner = UserFactory(username=f"prom-{tag}")
    customer = CustomerFactory(name=f"Provider {tag}", owners=[owner])
    offering = OfferingFactory(name=f"Offering {tag}", customer=customer)
    identity = AgentIdentityFactory(offering=offering, created_by=owner, name=f"agent-{tag}")
    AgentServiceFactory(identity=identity, state=AgentServiceState.ACTIVE)
    subscription, queue = provision_agent(identity, owner=owner, object_type="order")
    return owner, identity, subscription, queue


def _values(server: PrometheusServer, expr: str) -> list[float]:
    return [float(item["value"][1]) for item in server.query(expr)]


def _alert_states(server: PrometheusServer, agent_uuid: str) -> set[str]:
    return {
        alert["state"]
        for alert in server.api("alerts")["alerts"]
        if alert["labels"]["alertname"] == ALERT and alert["labels"]["agent_uuid"] == agent_uuid
    }


def test_the_disconnect_alert_goes_pending_then_firing_when_a_real_agent_disconnects(
    start_scraper, real_broker, settings, tmp_path
):
    # given: an agent consuming its queue over Web STOMP, scraped by Prometheus until it is
    # seen connected and no alert about it is active
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    owner, identity, subscription, queue = _provisioned_agent(uuid.uuid4().hex[:8])
    agent_uuid = str(identity.uuid)
    ws, _ = connect_agent(
        vhost=owner.uuid.hex,
        login=subscription.uuid.hex,
        passcode=Token.objects.get(user=owner).key,
    )
    try:
        subscribe_like_agent(ws, queue.queue_name)
        server = start_scraper(write_short_rules(tmp_path / "rules.yml", hold=HOLD))
        wait_until(
            lambda: (
                _values(server, f'agentstats_agent_connected{{agent_uuid="{agent_uuid}"}}') == [1.0]
                and not _alert_states(server, agent_uuid)
            ),
            timeout=WAIT_SECONDS,
            message="Prometheus scrapes the agent connected, with no alert about it",
        )

        # when
        ws.disconnect()
        seen: set[str] = set()

        def is_firing() -> bool:
            seen.update(_alert_states(server, agent_uuid))
            return "firing" in seen

        wait_until(is_firing, timeout=WAIT_SECONDS, message=f"{ALERT} fires for the agent")
    finally:
        if ws.is_connected():
            ws.disconnect()

    # then: pending for the hold, then firing, naming the agent, its offering and provider
    alerts = server.api("alerts")["alerts"]
    rules = server.api("rules")
    print(json.dumps({"alerts": alerts, "rules": rules}, indent=2))
    if os.environ.get("SAVE_PROMETHEUS_RUN") == "1":
        RUN_RECORD.write_text(json.dumps({"alerts": alerts, "rules": rules}, indent=2) + "\n")
    assert seen == {"pending", "firing"}
    (fired,) = [alert for alert in alerts if alert["labels"].get("agent_uuid") == agent_uuid]
    assert fired["labels"] == {
        "alertname": ALERT,
        "severity": "warning",
        "agent_uuid": agent_uuid,
        "agent": identity.name,
        "offering_uuid": str(identity.offering.uuid),
        "offering": identity.offering.name,
        "customer_uuid": str(identity.offering.customer.uuid),
        "customer": identity.offering.customer.name,
        "instance": fired["labels"]["instance"],
        "job": "agentstats",
    }
    assert fired["annotations"]["summary"] == (
        f"Agent {identity.name} has been disconnected from the broker for 10 minutes"
    )
    evaluated = [rule for group in rules["groups"] for rule in group["rules"]]
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert len(evaluated) == sum(len(group["rules"]) for group in shipped) == 16
    assert [(rule["name"], rule["health"], rule.get("lastError", "")) for rule in evaluated] == [
        (rule["name"], "ok", "") for rule in evaluated
    ]
    (disconnect_rule,) = [rule for rule in evaluated if rule["name"] == ALERT]
    assert disconnect_rule["state"] == "firing"


def _panel_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every panel target of the shipped dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def _substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, expr
    return expr


def test_every_dashboard_query_runs_against_a_real_prometheus(start_scraper, real_broker, settings):
    # given: a provisioned agent that is not connected, scraped a few times with the
    # shipped rules
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    _, identity, _, _ = _provisioned_agent(uuid.uuid4().hex[:8])
    offering = identity.offering
    server = start_scraper(RULES)
    wait_until(
        lambda: (
            _values(server, "count_over_time(agentstats_broker_up[1m])") >= [3.0]
            and _values(server, f'agentstats_agent_connected{{agent_uuid="{identity.uuid}"}}')
        ),
        timeout=WAIT_SECONDS,
        message="three scrapes, the agent among them",
    )
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {
        variable["name"]: variable
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    }
    # Longest names first: $__rate_interval before any shorter prefix of it.
    values = {
        "__rate_interval": "1m",
        "customer": offering.customer.name,
        "offering": offering.name,
        "job": "agentstats",
    }

    # when: each variable's label_values() and each panel target is asked
    offered = {}
    for name, variable in variables.items():
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
        assert match, variable["definition"]
        selector, label = match.groups()
        offered[name] = {
            item["metric"].get(label) for item in server.query(_substitute(selector, values))
        }
    answers = {
        (title, expr): server.query(_substitute(expr, values)) for title, expr in _panel_queries()
    }

    # then: every query is valid PromQL and answers; each over series this service exposes
    # has data (the jobs' series come from the job engine, when it has run)
    assert offered == {
        "job": {"agentstats"},
        "customer": {offering.customer.name},
        "offering": {offering.name},
    }
    assert len(answers) >= 15
    empty = [key for key, result in answers.items() if not result]
    assert [key for key in empty if "agentstats_job_" not in key[1]] == []
