"""Every test that needs a real service carries its marker, so `make unit` can deselect it."""

import ast
from types import SimpleNamespace

from tests.kit.paths import ROOT
from tests.kit.services import SERVICE_FIXTURES, mark_service_tests


def fixtures_calling(function_name: str) -> set[str]:
    """The names of the pytest fixtures under tests/ whose body calls `function_name`."""
    found = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or not any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
            ):
                continue
            if any(
                isinstance(call, ast.Call) and ast.unparse(call.func) == function_name
                for call in ast.walk(node)
            ):
                found.add(node.name)
    return found


def collected(*fixturenames: str) -> SimpleNamespace:
    item = SimpleNamespace(fixturenames=list(fixturenames), markers=[])
    item.add_marker = item.markers.append
    return item


def test_every_fixture_that_requires_a_service_gives_its_tests_a_marker():
    # when the fixtures that ask for a real service are looked up
    requiring = fixtures_calling("require_service")

    # then each is one that marks its tests
    assert requiring
    assert requiring <= set(SERVICE_FIXTURES), requiring - set(SERVICE_FIXTURES)


def test_a_test_is_marked_with_every_service_its_fixtures_need():
    # given tests using service fixtures (as pytest lists them, through other fixtures too)
    browser_test = collected("db", "live_server", "browser_fleet", "real_broker", "browser")
    redis_test = collected("settings", "redis_cache")

    # when
    mark_service_tests([browser_test, redis_test])

    # then
    assert sorted(browser_test.markers) == ["broker", "browser", "live_server"]
    assert redis_test.markers == ["redis"]


def test_a_test_without_service_fixtures_is_not_marked():
    # given
    unit_test = collected("db", "broker", "settings", "client_for")

    # when
    mark_service_tests([unit_test])

    # then
    assert unit_test.markers == []
