"""Background work on a fixed tick, in every server process.

Jobs are safe to run from several processes at once: each takes its own lease or is idempotent (ADE syncs lease
their token; purges delete by condition).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

log = logging.getLogger(__name__)

JOB_RUNS = Counter(
    "muster_job_runs_total", "Background job runs, by job and outcome (ok or failed)", ["job", "outcome"]
)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Awaitable[object]]


class JobRunner:
    def __init__(self, jobs: Sequence[Job], *, interval: float) -> None:
        self._jobs = jobs
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def tick(self) -> None:
        for job in self._jobs:
            try:
                await job.run()
            except Exception:  # one failing job must not stop the others, nor the next tick
                log.exception("background job failed", extra={"job": job.name})
                JOB_RUNS.labels(job.name, "failed").inc()
            else:
                JOB_RUNS.labels(job.name, "ok").inc()

    async def _loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)
