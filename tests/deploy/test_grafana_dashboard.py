"""The Grafana dashboard is importable as shipped: a Prometheus data source variable that
every panel and query uses, unique panel ids, panels inside the 24-column grid, and a
query for every panel over the service's own series."""

import json
import re

from tests.kit.prometheus import DASHBOARD

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _load() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_the_dashboard_asks_for_a_prometheus_data_source_and_every_query_uses_it():
    # given
    dashboard = _load()

    # when
    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]

    # then
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert all(
        item["datasource"] == DATASOURCE for item in variables.values() if item["type"] == "query"
    )
    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"])


def test_panels_have_unique_ids_and_fit_the_grid():
    # given
    panels = _load()["panels"]

    # then
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_query_reads_agentstats_series_and_known_variables_only():
    # given
    dashboard = _load()
    names = {item["name"] for item in dashboard["templating"]["list"]} | {"__rate_interval"}
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ] + [item["definition"] for item in dashboard["templating"]["list"] if item["type"] == "query"]

    # then
    for query in queries:
        assert re.search(r"\b(agentstats_\w+|ALERTS)\b", query), query
        assert set(re.findall(r"\$(\w+)", query)) <= names, query
