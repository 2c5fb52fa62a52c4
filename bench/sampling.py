"""Timed samples of the stats endpoint and of the broker calls it is compared with."""

import argparse
import math
from collections.abc import Callable

from django.conf import settings

from bench.probes import EndpointProbe, FloorProbe, Sample, UpstreamProbe, median, percentile
from bench.report import Timing

# The upstream pattern takes minutes at scale: after this many samples, a time budget rules.
MIN_UPSTREAM_SAMPLES = 3
# One per gunicorn worker (each opens its connections on its first request).
WARMUP_REQUESTS = 2
HTTP_TIMEOUT = 120.0
# The cached server is context, not a compared probe: fewer samples keep the run short.
CACHED_SAMPLES = 5


def measure_interleaved(
    args: argparse.Namespace, base_url: str, token: str, *, say: Callable[[str], None]
) -> dict[str, list[Sample]]:
    """Time the endpoint, the floor and the upstream pattern in turns, rotating who goes
    first each round, so a busy moment of the machine skews all three alike."""
    auth = (settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD)
    management = settings.RABBITMQ_MANAGEMENT_URL
    endpoint = EndpointProbe(base_url, token, timeout=HTTP_TIMEOUT)
    floor = FloorProbe(management, auth, timeout=HTTP_TIMEOUT)
    upstream = UpstreamProbe(management, auth, timeout=HTTP_TIMEOUT)
    probes: list[tuple[str, Callable[[], Sample]]] = [
        ("endpoint", endpoint.measure),
        ("floor", floor.measure),
        ("upstream", upstream.measure),
    ]
    for _ in range(WARMUP_REQUESTS):
        endpoint.measure()
    floor.measure()
    samples: dict[str, list[Sample]] = {name: [] for name, _ in probes}
    upstream_spent = 0.0
    try:
        for round_number in range(args.requests):
            shift = round_number % len(probes)
            measured = []
            for name, measure in probes[shift:] + probes[:shift]:
                if name == "upstream" and not _may_run_upstream(
                    args, samples["upstream"], upstream_spent
                ):
                    continue
                sample = measure()
                samples[name].append(sample)
                measured.append(f"{name} {sample.seconds:.3f}s {sample.error}".rstrip())
                if name == "upstream":
                    upstream_spent += sample.seconds
            say(f"   round {round_number + 1}/{args.requests}: " + ", ".join(measured))
    finally:
        floor.close()
    return samples


def measure_endpoint_only(base_url: str, token: str) -> list[Sample]:
    """A few timed requests to the endpoint alone, after warming up its workers."""
    endpoint = EndpointProbe(base_url, token, timeout=HTTP_TIMEOUT)
    for _ in range(WARMUP_REQUESTS):
        endpoint.measure()
    return [endpoint.measure() for _ in range(CACHED_SAMPLES)]


def _may_run_upstream(args: argparse.Namespace, done: list[Sample], spent: float) -> bool:
    if len(done) < MIN_UPSTREAM_SAMPLES:
        return True
    return spent + done[-1].seconds <= args.upstream_budget


def summarize_timing(samples: list[Sample]) -> Timing:
    """Median, p90, calls and size of the samples that succeeded; errors counted by kind."""
    good = [sample for sample in samples if not sample.error]
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.error:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    seconds = [sample.seconds for sample in good] or [math.nan]
    return Timing(
        median=median(seconds),
        p90=percentile(seconds, 0.9),
        samples=len(good),
        calls=max(sample.calls for sample in samples),
        size=int(median([sample.size for sample in good])) if good else 0,
        errors=errors,
    )
