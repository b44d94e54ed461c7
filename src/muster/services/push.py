"""Waking devices over APNs (apple-protocols.md §6).

Requests to wake enrollments go into a pending set and are sent by one background drain: repeated requests for
the same enrollment while it waits coalesce into one push, and many enrollments share a few HTTP/2 connections.
Enrollments whose token APNs reports as unregistered are not pushed again until their next TokenUpdate.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from muster.protocols.apple.apns import PushOutcome, PushResult, PushTarget
from muster.services import metrics
from muster.services.ports import MdmStore

log = logging.getLogger(__name__)


class PushSender(Protocol):
    async def push_many(self, targets: Iterable[PushTarget]) -> list[PushResult]: ...


class PushDispatcher:
    def __init__(
        self, *, store: MdmStore, sender: Callable[[], Awaitable[PushSender | None]], batch_size: int = 5000
    ) -> None:
        self._store = store
        self._sender = sender
        self._batch_size = batch_size
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def request(self, enrollment_ids: Iterable[str]) -> None:
        self._pending.update(dict.fromkeys(enrollment_ids))
        if self._pending and (self._task is None or self._task.done()):
            self._idle.clear()
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def wait_idle(self) -> None:
        """Return when every requested push has been sent (or given up)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._idle.set()

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = list(self._pending)[: self._batch_size]
                for enrollment_id in batch:
                    del self._pending[enrollment_id]
                try:
                    await self.push_now(batch)
                except Exception:  # a push failure must never take the dispatcher down
                    log.exception("push batch failed", extra={"enrollments": len(batch)})
        finally:
            self._idle.set()

    async def push_now(self, enrollment_ids: Sequence[str]) -> list[PushResult]:
        sender = await self._sender()
        if sender is None:
            log.warning("no APNs certificate: %d devices not woken", len(enrollment_ids))
            metrics.PUSHES.labels("noCertificate").inc(len(enrollment_ids))
            return []
        records = await self._store.push_targets(enrollment_ids)
        by_token = {record.push_token: record.enrollment_id for record in records}
        targets = [PushTarget(token=r.push_token, push_magic=r.push_magic, topic=r.topic) for r in records]
        results = await sender.push_many(targets)
        for outcome, count in collections.Counter(result.outcome for result in results).items():
            metrics.PUSHES.labels(outcome.value).inc(count)
        gone = [by_token[r.target.token] for r in results if r.outcome is PushOutcome.UNREGISTERED]
        if gone:
            await self._store.mark_push_unregistered(gone)
        return results
