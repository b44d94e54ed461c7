"""SQL storage of the command queue: enqueue, exactly-once hand-out, results, push targets, inventory.

Command hand-out is one UPDATE whose subquery takes its row with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several server processes never hand the same delivery out twice; SQLite serialises writers, which gives the
same guarantee to the single-process embedded default.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.commands import PENDING, SENT_LEASE, DeliveryStatus, eligible_statuses
from muster.services.ports import CompletedCommand, NewCommand, PushTargetRecord, QueuedCommand, ResultRecord
from muster.store.fit import fit
from muster.store.tables import UtcDateTime, command_deliveries, commands, devices, enrollments

_PENDING = [s.value for s in PENDING]
_CHUNK = 5000
# `lastSyncDateTime` is refreshed at most this often per device, so the command loop stays at one write.
LAST_SYNC_RESOLUTION = timedelta(seconds=60)


class SqlCommandStore:
    def __init__(self, engine: AsyncEngine, *, command_cache_size: int = 1024) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._commands: OrderedDict[str, _CommandInfo] = OrderedDict()
        self._cache_size = command_cache_size
        self._device_of: dict[str, str] = {}  # an enrollment never moves to another device
        self._last_sync: dict[str, datetime] = {}
        # The hot-path statements are built once: building SQLAlchemy expressions per request cost more CPU than
        # running them.
        self._handout = {
            after_idle: _handout_statement(after_idle, lock=self._postgres) for after_idle in (True, False)
        }
        self._store_result = _store_result_statement()

    async def enqueue(self, batch: Sequence[NewCommand], *, org_id: str, created_by: str, now: datetime) -> int:
        """Queue commands in one transaction, delivered in the order given; returns the deliveries created."""
        seq = time.time_ns()
        created = 0
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(commands),
                [
                    {
                        "uuid": c.command_uuid,
                        "org_id": org_id,
                        "request_type": c.request_type,
                        "body": c.body,
                        "action": c.action,
                        "created_by": created_by,
                        "created_at": now,
                    }
                    for c in batch
                ],
            )
            for position, command in enumerate(batch):
                rows = [
                    {
                        "enrollment_id": e,
                        "command_uuid": command.command_uuid,
                        "status": DeliveryStatus.QUEUED.value,
                        "priority": command.priority,
                        "queued_seq": seq + position,
                    }
                    for e in command.enrollment_ids
                ]
                for start in range(0, len(rows), _CHUNK):
                    await conn.execute(insert(command_deliveries), rows[start : start + _CHUNK])
                created += len(rows)
        for command in batch:
            self._remember(command.command_uuid, _CommandInfo(command.request_type, command.action, command.body))
        return created

    async def report_and_next(
        self, result: ResultRecord | None, *, enrollment_id: str, after_idle: bool, now: datetime
    ) -> tuple[CompletedCommand | None, QueuedCommand | None]:
        """Store a device's result (if any) and hand out its next command, in one transaction: the steady command
        loop costs one transaction and, with warm caches, two statements."""
        async with self._engine.begin() as conn:
            completed = await self._record_result(conn, result) if result is not None else None
            queued = await self._next_command(conn, enrollment_id=enrollment_id, after_idle=after_idle, now=now)
            await self._touch(conn, enrollment_id, now)
        return completed, queued

    async def _next_command(
        self, conn: AsyncConnection, *, enrollment_id: str, after_idle: bool, now: datetime
    ) -> QueuedCommand | None:
        parameters = {"p_enrollment_id": enrollment_id, "p_now": now, "p_lease_cutoff": now - SENT_LEASE}
        command_uuid = (await conn.execute(self._handout[after_idle], parameters)).scalar()
        if command_uuid is None:
            return None
        info = await self._command_info(conn, command_uuid)
        return QueuedCommand(command_uuid=command_uuid, body=info.body)

    async def _record_result(self, conn: AsyncConnection, record: ResultRecord) -> CompletedCommand | None:
        final = record.status != DeliveryStatus.NOT_NOW.value
        stored = await conn.execute(
            self._store_result,
            {
                "p_enrollment_id": record.enrollment_id,
                "p_command_uuid": record.command_uuid,
                "p_status": record.status,
                "p_completed_at": record.now if final else None,
                "p_result": record.raw,
                "p_error_chain": record.error_chain,
            },
        )
        if stored.first() is None:
            return None  # unknown command, or a result the device sent twice
        info = await self._command_info(conn, record.command_uuid)
        device_id = self._device_of.get(record.enrollment_id)
        if device_id is None:
            query = select(enrollments.c.device_id).where(enrollments.c.id == record.enrollment_id)
            device_id = (await conn.execute(query)).scalar_one()
            self._device_of[record.enrollment_id] = device_id
        return CompletedCommand(
            device_id=device_id,
            request_type=info.request_type,
            action=info.action,
            first_result=final,
            command=info.body,
        )

    async def _command_info(self, conn: AsyncConnection, command_uuid: str) -> _CommandInfo:
        """Commands never change once queued, so each server process reads one at most once."""
        info = self._commands.get(command_uuid)
        if info is None:
            c = commands.c
            row = (await conn.execute(select(c.request_type, c.action, c.body).where(c.uuid == command_uuid))).one()
            info = _CommandInfo(row.request_type, row.action, row.body)
            self._remember(command_uuid, info)
        return info

    async def push_targets(self, enrollment_ids: Sequence[str]) -> list[PushTargetRecord]:
        e = enrollments.c
        found: list[PushTargetRecord] = []
        async with self._engine.connect() as conn:
            for start in range(0, len(enrollment_ids), _CHUNK):
                query = select(e.id, e.topic, e.push_token, e.push_magic).where(
                    e.id.in_(enrollment_ids[start : start + _CHUNK]),
                    e.enabled.is_(True),
                    e.push_unregistered.is_(False),
                    e.push_token.is_not(None),
                )
                found += [
                    PushTargetRecord(r.id, r.topic, r.push_token, r.push_magic) for r in await conn.execute(query)
                ]
        return found

    async def mark_push_unregistered(self, enrollment_ids: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            for start in range(0, len(enrollment_ids), _CHUNK):
                chunk = enrollment_ids[start : start + _CHUNK]
                await conn.execute(
                    update(enrollments).where(enrollments.c.id.in_(chunk)).values(push_unregistered=True)
                )

    async def apply_inventory(self, *, device_id: str, columns: dict[str, Any], inventory: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            query = select(devices.c.inventory).where(devices.c.id == device_id)
            if self._postgres:
                query = query.with_for_update()
            current = (await conn.execute(query)).scalar() or {}
            await conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(**fit(devices, columns), inventory={**current, **inventory})
            )

    async def set_management_state(self, *, device_id: str, state: str, now: datetime, unenrolled: bool) -> None:
        async with self._engine.begin() as conn:
            values: dict[str, Any] = {"management_state": state}
            if unenrolled:
                values["unenrolled_at"] = now
                channels = [
                    r.id
                    for r in await conn.execute(select(enrollments.c.id).where(enrollments.c.device_id == device_id))
                ]
                await conn.execute(update(enrollments).where(enrollments.c.id.in_(channels)).values(enabled=False))
                await conn.execute(
                    update(command_deliveries)
                    .where(
                        command_deliveries.c.enrollment_id.in_(channels),
                        command_deliveries.c.status.in_(_PENDING),
                    )
                    .values(status=DeliveryStatus.CANCELLED.value)
                )
            await conn.execute(update(devices).where(devices.c.id == device_id).values(values))

    async def _touch(self, conn: AsyncConnection, enrollment_id: str, now: datetime) -> None:
        last = self._last_sync.get(enrollment_id)
        if last is not None and now - last < LAST_SYNC_RESOLUTION:
            return
        self._last_sync[enrollment_id] = now
        device_id = select(enrollments.c.device_id).where(enrollments.c.id == enrollment_id).scalar_subquery()
        await conn.execute(update(devices).where(devices.c.id == device_id).values(last_sync_at=now))

    def _remember(self, command_uuid: str, info: _CommandInfo) -> None:
        self._commands[command_uuid] = info
        if len(self._commands) > self._cache_size:
            self._commands.popitem(last=False)


@dataclass(frozen=True)
class _CommandInfo:
    request_type: str
    action: str | None
    body: bytes


def _handout_statement(after_idle: bool, *, lock: bool) -> Any:
    """Hand out the enrollment's next eligible command: the subquery picks it (locking it, skipping rows other
    processes hold, on PostgreSQL) and the outer UPDATE re-checks eligibility, so a delivery goes out once."""
    d = command_deliveries.c
    eligible = or_(
        d.status.in_([s.value for s in eligible_statuses(after_idle=after_idle)]),
        and_(d.status == DeliveryStatus.SENT.value, d.sent_at < bindparam("p_lease_cutoff", type_=UtcDateTime())),
    )
    pick = (
        select(d.command_uuid)
        .where(d.enrollment_id == bindparam("p_enrollment_id"), eligible)
        .order_by(d.priority.desc(), d.queued_seq, d.command_uuid)
        .limit(1)
    )
    if lock:
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(command_deliveries)
        .where(d.enrollment_id == bindparam("p_enrollment_id"), d.command_uuid == pick.scalar_subquery(), eligible)
        .values(status=DeliveryStatus.SENT.value, sent_at=bindparam("p_now", type_=UtcDateTime()))
        .returning(d.command_uuid)
    )


def _store_result_statement() -> Any:
    d = command_deliveries.c
    return (
        update(command_deliveries)
        .where(
            d.enrollment_id == bindparam("p_enrollment_id"),
            d.command_uuid == bindparam("p_command_uuid"),
            d.status.in_(_PENDING),
        )
        .values(
            status=bindparam("p_status"),
            completed_at=bindparam("p_completed_at", type_=UtcDateTime()),
            result=bindparam("p_result"),
            error_chain=bindparam("p_error_chain", type_=JSON()),
        )
        .returning(d.command_uuid)
    )
