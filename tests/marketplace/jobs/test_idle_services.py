"""mark_idle_services (upstream's mark_agent_services_as_inactive): an Active service whose
newest processor run is AGENT_SERVICE_IDLE_AFTER_SECONDS old turns Idle through the job,
and the agent's next register_service sets it Active again."""

from datetime import timedelta

import pytest

from marketplace.jobs.engine import run_job
from marketplace.jobs.registry import JOBS
from marketplace.models import AgentProcessor, AgentService, JobRun
from marketplace.names import AgentServiceState, JobOutcome
from tests.factories import AgentProcessorFactory, AgentServiceFactory

IDLE_AFTER = 600


@pytest.fixture
def idle_job(settings):
    settings.AGENT_SERVICE_IDLE_AFTER_SECONDS = IDLE_AFTER
    settings.JOB_MARK_IDLE_SERVICES_SECONDS = 60
    return next(job for job in JOBS if job.name == "mark_idle_services")


def service_with_runs(identity, *, state, runs_ago, clock):
    """A service in `state` with one processor per entry of `runs_ago` (seconds before
    now; None: a processor that never ran)."""
    service = AgentServiceFactory(identity=identity, state=state)
    for seconds in runs_ago:
        AgentProcessorFactory(
            service=service, last_run=None if seconds is None else clock.ago(seconds)
        )
    return service


def state_of(service) -> str:
    return AgentService.objects.get(pk=service.pk).state


def test_services_whose_processors_stopped_turn_idle_and_others_stay(
    identity, idle_job, fake_clock
):
    # given services whose newest processor ran at different times, and special cases
    silent = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[4000, 700], clock=fake_clock
    )
    at_threshold = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[IDLE_AFTER], clock=fake_clock
    )
    one_still_runs = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[4000, 30], clock=fake_clock
    )
    no_processor = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[], clock=fake_clock
    )
    never_ran = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[None], clock=fake_clock
    )
    failing = service_with_runs(
        identity, state=AgentServiceState.ERROR, runs_ago=[4000], clock=fake_clock
    )

    # when the job runs
    run = run_job(idle_job, now=fake_clock.now())

    # then the silent ones are Idle; the rest keep their states
    assert run is not None
    assert JobRun.objects.get(pk=run.pk).summary == {"marked_idle": 2}
    assert JobRun.objects.get(pk=run.pk).outcome == JobOutcome.OK
    assert [state_of(s) for s in (silent, at_threshold)] == [AgentServiceState.IDLE] * 2
    assert state_of(one_still_runs) == AgentServiceState.ACTIVE
    assert state_of(no_processor) == AgentServiceState.ACTIVE
    assert state_of(never_ran) == AgentServiceState.ACTIVE
    assert state_of(failing) == AgentServiceState.ERROR


def test_marking_idle_moves_modified_as_upstream(identity, idle_job, fake_clock):
    service = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[4000], clock=fake_clock
    )
    fake_clock.advance(5)

    run_job(idle_job, now=fake_clock.now())

    assert AgentService.objects.get(pk=service.pk).modified == fake_clock.now()


def test_a_silent_service_turns_idle_then_active_on_its_next_registration(
    identity, owner, client_for, idle_job, fake_clock
):
    # given an agent that registered its service and processor through the API
    client = client_for(owner)
    base = f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/register_service/"
    body = {"name": "event_process", "mode": "event_process"}
    registered = client.post(base, body, format="json")
    assert registered.status_code == 201
    service_hex = registered.json()["uuid"].replace("-", "")
    processor = client.post(
        f"/api/marketplace-site-agent-services/{service_hex}/register_processor/",
        {"name": "OfferingOrderProcessor", "backend_type": "slurm"},
        format="json",
    )
    assert processor.status_code == 201

    # when its processor stays silent past the threshold and the job runs
    last_run = AgentProcessor.objects.get(name="OfferingOrderProcessor").last_run
    fake_clock.current = last_run + timedelta(seconds=IDLE_AFTER + 1)
    run_job(idle_job, now=fake_clock.now())

    # then the API shows it Idle
    shown = client.get(f"/api/marketplace-site-agent-services/{service_hex}/")
    assert shown.json()["state"] == AgentServiceState.IDLE

    # when the agent registers the service again
    again = client.post(base, body, format="json")

    # then it is Active again
    assert again.status_code == 200
    assert again.json()["state"] == AgentServiceState.ACTIVE
    assert (
        client.get(f"/api/marketplace-site-agent-services/{service_hex}/").json()["state"]
        == AgentServiceState.ACTIVE
    )


def test_the_threshold_is_a_setting(identity, idle_job, fake_clock, settings):
    # given a service silent for 100 s and a threshold of 60 s
    settings.AGENT_SERVICE_IDLE_AFTER_SECONDS = 60
    service = service_with_runs(
        identity, state=AgentServiceState.ACTIVE, runs_ago=[100], clock=fake_clock
    )

    run_job(idle_job, now=fake_clock.now())

    assert state_of(service) == AgentServiceState.IDLE
