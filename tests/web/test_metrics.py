"""Prometheus `/metrics`: a real enrollment over HTTP moves the check-in, SCEP, push, enrollment and command
counters, the queue-depth gauge counts the commands waiting, and background job runs are counted by outcome."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from muster.jobs.runner import Job, JobRunner
from muster.simulators.apple_device import VirtualAppleDevice
from tests.harness import RunningMuster, fake_apple, running_muster

Sample = tuple[str, tuple[tuple[str, str], ...]]

WATCHED: list[tuple[str, dict[str, str]]] = [
    ("muster_mdm_checkins_total", {"message_type": "Authenticate", "result": "ok"}),
    ("muster_mdm_checkins_total", {"message_type": "TokenUpdate", "result": "ok"}),
    ("muster_mdm_checkins_total", {"message_type": "invalid", "result": "malformed"}),
    ("muster_scep_operations_total", {"result": "issued"}),
    ("muster_apns_pushes_total", {"outcome": "delivered"}),
    ("muster_enrollments_completed_total", {"platform": "apple"}),
    ("muster_mdm_command_reports_total", {"status": "Idle"}),
    ("muster_mdm_command_reports_total", {"status": "Acknowledged"}),
]


def _key(name: str, labels: dict[str, str]) -> Sample:
    return name, tuple(sorted(labels.items()))


def in_process() -> dict[Sample, float]:
    """The watched counters as this process holds them (the server runs in this process)."""
    return {_key(name, labels): REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in WATCHED}


async def scrape(muster: RunningMuster) -> dict[Sample, float]:
    async with muster.device_client() as http:
        response = await http.get(f"{muster.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        _key(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_an_enrollment_moves_the_counters(tmp_path: Path) -> None:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        before = in_process()
        profile = await muster.enrollment_profile(user="ada@example.com")
        installed = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile)
        async with httpx.AsyncClient(verify=installed.ssl_context()) as http:
            device = VirtualAppleDevice(http=http)
            await device.enroll(profile)
            await muster.container.pusher.wait_idle()
            waiting = await scrape(muster)
            assert waiting[_key("muster_command_queue_depth", {"status": "queued"})] == 5
            assert waiting[_key("muster_command_queue_depth", {"status": "sent"})] == 0
            handled = await device.poll()
            garbage = await http.put(f"{muster.base_url}/mdm/checkin", content=b"not a plist")
            assert garbage.status_code == 400
        after = await scrape(muster)

    moved = {key: after.get(key, 0.0) - before[key] for key in before}
    assert moved == {
        _key("muster_mdm_checkins_total", {"message_type": "Authenticate", "result": "ok"}): 1,
        _key("muster_mdm_checkins_total", {"message_type": "TokenUpdate", "result": "ok"}): 1,
        _key("muster_mdm_checkins_total", {"message_type": "invalid", "result": "malformed"}): 1,
        _key("muster_scep_operations_total", {"result": "issued"}): 1,
        _key("muster_apns_pushes_total", {"outcome": "delivered"}): 1,
        _key("muster_enrollments_completed_total", {"platform": "apple"}): 1,
        _key("muster_mdm_command_reports_total", {"status": "Idle"}): 1,
        _key("muster_mdm_command_reports_total", {"status": "Acknowledged"}): handled,
    }
    assert after[_key("muster_http_requests_total", {"route": "/metrics", "method": "GET", "status": "200"})] >= 1


async def test_job_runs_are_counted_by_outcome() -> None:
    async def succeed() -> None:
        return None

    async def fail() -> None:
        raise RuntimeError("the job's own failure")

    def runs(job: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("muster_job_runs_total", {"job": job, "outcome": outcome}) or 0.0

    before = runs("metricsTestOk", "ok"), runs("metricsTestFails", "failed")
    runner = JobRunner([Job("metricsTestFails", fail), Job("metricsTestOk", succeed)], interval=60)
    await runner.tick()
    await runner.tick()
    assert (runs("metricsTestOk", "ok"), runs("metricsTestFails", "failed")) == (before[0] + 2, before[1] + 2)
    assert runs("metricsTestOk", "failed") == runs("metricsTestFails", "ok") == 0
