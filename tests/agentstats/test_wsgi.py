"""The server process tunes Python's garbage collector from GC_THRESHOLDS."""

import gc
import os
import subprocess
import sys

import pytest

from agentstats.wsgi import tune_garbage_collector


@pytest.fixture
def restored_gc():
    previous = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*previous)


def test_tuning_applies_the_configured_thresholds_and_freezes_the_loaded_app(settings, restored_gc):
    # given
    settings.GC_THRESHOLDS = (12345, 7, 3)

    # when
    tune_garbage_collector()

    # then
    assert gc.get_threshold() == (12345, 7, 3)
    assert gc.get_freeze_count() > 0


def test_empty_thresholds_keep_pythons_own(settings, restored_gc):
    settings.GC_THRESHOLDS = ()
    before = gc.get_threshold()

    tune_garbage_collector()

    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "()"), ("50000,20,100", "(50000, 20, 100)"), (" 1000 ", "(1000,)")],
)
def test_gc_thresholds_setting_reads_up_to_three_integers(value, expected):
    assert _settings_value("GC_THRESHOLDS", {"GC_THRESHOLDS": value}) == expected


@pytest.mark.parametrize("value", ["a,b", "1,2,3,4", "-5", "1.5"])
def test_gc_thresholds_setting_rejects_anything_else(value):
    with pytest.raises(subprocess.CalledProcessError) as failure:
        _settings_value("GC_THRESHOLDS", {"GC_THRESHOLDS": value})
    assert "GC_THRESHOLDS must be up to 3 comma-separated non-negative integers" in (
        failure.value.stderr
    )


def _settings_value(name: str, env: dict[str, str]) -> str:
    # Settings are read once per process: a fresh interpreter reads the given environment.
    completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", f"from agentstats import settings; print(settings.{name})"],
        env={**os.environ, "SECRET_KEY": "test", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stdout.strip()
