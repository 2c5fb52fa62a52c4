"""The shipped Prometheus rules pass promtool's checks and their unit tests: each alert
fires after its `for:` from input series, and none fires in the healthy case
(tests/deploy/prometheus_rules_test.yml)."""

import yaml

from tests.kit.prometheus import RULES, RULES_TESTS, run_promtool


def test_promtool_accepts_the_shipped_rules(prometheus_binaries):
    # when
    checked = run_promtool(prometheus_binaries, "check", "rules", str(RULES))

    # then
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_every_alert_passes_its_promtool_unit_tests(prometheus_binaries):
    # when
    tested = run_promtool(prometheus_binaries, "test", "rules", str(RULES_TESTS))

    # then
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_keeps_it_silent():
    # given
    rules = yaml.safe_load(RULES.read_text())
    alerts = {
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }
    cases = [
        case
        for test in yaml.safe_load(RULES_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]

    # then
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fired == alerts
    assert silent == alerts
