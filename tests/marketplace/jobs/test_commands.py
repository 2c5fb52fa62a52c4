"""`observe_connections` (what docker-compose's observer service and `make run` start)
runs the job scheduler beside the observer and shuts it down with it."""

from django.core.management import call_command

from marketplace.envelope.observer import ConnectionObserver
from marketplace.management.commands import observe_connections
from tests.kit.paths import ROOT


class RecordingScheduler:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def shutdown(self, *, wait: bool) -> None:
        self.events.append(f"shutdown(wait={wait})")

    def get_jobs(self) -> list:
        return []


def test_the_observer_command_runs_the_scheduler_beside_the_observer(monkeypatch, capsys):
    # given an observer that stops at once, and a scheduler that records what happens
    scheduler = RecordingScheduler()
    monkeypatch.setattr(observe_connections, "build_scheduler", lambda: scheduler)
    monkeypatch.setattr(
        ConnectionObserver, "run", lambda self: scheduler.events.append("observer ran")
    )

    # when the command runs
    call_command("observe_connections")

    # then the scheduler started before the observer and was shut down after it
    assert scheduler.events == ["start", "observer ran", "shutdown(wait=True)"]
    assert "Observer stopped." in capsys.readouterr().out


def test_make_run_starts_the_jobs_alone_when_no_broker_answers():
    script = (ROOT / "scripts" / "run.sh").read_text()

    assert '"$PYTHON" manage.py observe_connections &' in script
    assert '"$PYTHON" manage.py run_jobs &' in script
