"""Log lines are kept AGENT_LOG_RETENTION_DAYS: pruned in bounded batches by a command and
by the prune_agent_logs job (tests/marketplace/jobs/)."""

from datetime import timedelta

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.agent_logs.services import prune_agent_logs
from marketplace.models import AgentLog
from tests.marketplace.agent_logs.builders import at, store_log

NOW = at(12)


def received_days_ago(identity, days: float, count: int = 1) -> list[AgentLog]:
    # Logged long ago but received `days` before NOW: retention counts from receipt.
    return [
        store_log(identity, at=at(0) - timedelta(days=400), created=NOW - timedelta(days=days))
        for _ in range(count)
    ]


def test_lines_received_before_the_retention_window_are_deleted(identity, settings):
    # given a 30-day retention, two lines received 31 days ago and one 29 days ago
    settings.AGENT_LOG_RETENTION_DAYS = 30
    received_days_ago(identity, 31, count=2)
    [kept] = received_days_ago(identity, 29)

    # when the logs are pruned
    deleted = prune_agent_logs(now=NOW)

    # then the old ones are gone and the recent one stays
    assert deleted == 2
    assert list(AgentLog.objects.all()) == [kept]


def test_pruning_deletes_in_batches_of_the_given_size(identity, settings):
    # given five expired lines
    settings.AGENT_LOG_RETENTION_DAYS = 30
    received_days_ago(identity, 40, count=5)

    # when they are pruned two rows at a time
    with CaptureQueriesContext(connection) as queries:
        deleted = prune_agent_logs(now=NOW, batch_size=2)

    # then three DELETE statements remove all five
    deletes = [q for q in queries if q["sql"].startswith('DELETE FROM "marketplace_agentlog"')]
    assert (deleted, len(deletes)) == (5, 3)
    assert not AgentLog.objects.exists()


def test_a_retention_of_zero_days_keeps_every_line(identity, settings):
    # given retention switched off and a line received years ago
    settings.AGENT_LOG_RETENTION_DAYS = 0
    received_days_ago(identity, 3000)

    # when the logs are pruned
    deleted = prune_agent_logs(now=NOW)

    # then nothing is deleted
    assert deleted == 0
    assert AgentLog.objects.count() == 1


def test_the_command_prunes_and_says_how_many(identity, settings, capsys):
    # given one expired line and one recent
    settings.AGENT_LOG_RETENTION_DAYS = 30
    store_log(identity, at=at(1), created=timezone.now() - timedelta(days=31))
    store_log(identity, at=at(1), created=timezone.now())

    # when the command runs
    call_command("prune_agent_logs", "--batch-size", "1")

    # then it deleted the expired line and said so
    assert "Deleted 1 agent log lines." in capsys.readouterr().out
    assert AgentLog.objects.count() == 1
