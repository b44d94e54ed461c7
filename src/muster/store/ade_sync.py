"""SQL storage behind the ADE sync engine: per-token leases, and pages of devices saved with their cursor.

A page of devices and the cursor that follows it are written in one transaction, so a process killed mid-sync
leaves the cursor at the last page it fully saved: the next sync resumes there, and upserts keyed by
(token, serial) make a replayed page harmless.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.services.ade_ports import PageWrite, SyncedDevice, TokenSyncRow
from muster.store.tables import ade_devices, dep_tokens

# Columns a sync refreshes; assignment and enrollment state are Muster's own and never overwritten by ABM data.
_ABM_COLUMNS = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "abm_profile_uuid",
    "abm_profile_status",
    "abm_profile_assigned_at",
    "abm_profile_pushed_at",
    "device_assigned_at",
    "device_assigned_by",
    "op_date",
    "abm_status",
    "released_at",
    "last_seen_run_id",
    "updated_at",
)
_t, _d = dep_tokens.c, ade_devices.c
_SYNC_COLUMNS = (
    _t.id,
    _t.org_id,
    _t.credentials_encrypted,
    _t.token_expires_at,
    _t.cursor,
    _t.cursor_kind,
    _t.fetch_generation,
    _t.full_sync_required,
    _t.last_sync_started_at,
    _t.last_full_sync_at,
    _t.last_manual_sync_at,
    _t.last_sync_outcome,
    _t.sync_started_at,
    _t.sync_lease_expires_at,
    _t.sync_kind,
)


class SqlAdeSyncStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        insert = pg_insert(ade_devices) if engine.dialect.name == "postgresql" else sqlite_insert(ade_devices)
        self._upsert_statement = insert.on_conflict_do_update(
            index_elements=[_d.token_id, _d.serial_number],
            set_={name: insert.excluded[name] for name in _ABM_COLUMNS},
        )

    async def token_sync_row(self, token_id: str) -> TokenSyncRow | None:
        rows = await self._rows(_t.id == token_id)
        return rows[0] if rows else None

    async def tokens_for_sync(self) -> list[TokenSyncRow]:
        return await self._rows(_t.credentials_encrypted.is_not(None))

    async def _rows(self, condition: Any) -> list[TokenSyncRow]:
        count = (
            select(func.count())
            .select_from(ade_devices)
            .where(_d.token_id == _t.id, _d.abm_status == "assigned")
            .scalar_subquery()
        )
        query = select(*_SYNC_COLUMNS, count.label("device_count")).where(condition)
        async with self._engine.connect() as conn:
            return [TokenSyncRow(**row._mapping) for row in await conn.execute(query)]

    async def acquire(
        self, token_id: str, *, owner: str, run_id: str, kind: str, manual: bool, now: datetime, lease: timedelta
    ) -> bool:
        values: dict[str, Any] = {
            "sync_lease_owner": owner,
            "sync_lease_expires_at": now + lease,
            "sync_run_id": run_id,
            "sync_started_at": now,
            "sync_kind": kind,
            "sync_manual": manual,
            "sync_devices_seen": 0,
            "last_sync_started_at": now,
        }
        if manual:
            values["last_manual_sync_at"] = now
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(dep_tokens)
                .where(_t.id == token_id, or_(_t.sync_lease_expires_at.is_(None), _t.sync_lease_expires_at < now))
                .values(**values)
            )
        return result.rowcount == 1

    async def save_page(self, page: PageWrite) -> bool:
        async with self._engine.begin() as conn:
            held = await conn.execute(
                update(dep_tokens)
                .where(_t.id == page.token_id, _t.sync_lease_owner == page.owner, _t.sync_run_id == page.run_id)
                .values(
                    cursor=page.cursor,
                    cursor_kind=page.cursor_kind,
                    fetch_generation=page.fetch_generation,
                    sync_lease_expires_at=page.now + page.lease,
                    updated_at=page.now,
                    sync_devices_seen=_t.sync_devices_seen + len(page.devices),
                )
            )
            if held.rowcount != 1:
                return False  # the lease lapsed and another run may own the token now: write nothing
            created = [d for d in page.devices if page.create_missing or d.op_type == "added"]
            updated = [d for d in page.devices if not (page.create_missing or d.op_type == "added")]
            if created:
                await self._upsert(conn, page, created)
            if updated:
                await self._update_known(conn, page, updated)
            if page.fetch_complete:
                await conn.execute(
                    update(ade_devices)
                    .where(
                        _d.token_id == page.token_id,
                        _d.abm_status == "assigned",
                        or_(_d.last_seen_run_id.is_(None), _d.last_seen_run_id != page.fetch_generation),
                    )
                    .values(abm_status="released", released_at=page.now, updated_at=page.now)
                )
        return True

    async def _upsert(self, conn: AsyncConnection, page: PageWrite, devices: list[SyncedDevice]) -> None:
        # One statement for every page, the rows as parameters: compiling a fresh 1,000-row VALUES statement per
        # page cost about 20 times the database work.
        await conn.execute(self._upsert_statement, [_row(page, device) for device in devices])

    @staticmethod
    async def _update_known(conn: AsyncConnection, page: PageWrite, devices: list[SyncedDevice]) -> None:
        """Delta changes to devices Muster knows; a device deleted here but still in ABM stays deleted until the
        next full sync brings it back (ADE-19)."""
        statement = (
            update(ade_devices)
            .where(_d.token_id == page.token_id, _d.serial_number == bindparam("serial"))
            .values({name: bindparam(f"v_{name}") for name in _ABM_COLUMNS})
        )
        rows = [
            {"serial": d.serial_number, **{f"v_{k}": v for k, v in _row(page, d).items() if k in _ABM_COLUMNS}}
            for d in devices
        ]
        await conn.execute(statement, rows)

    async def finish(
        self,
        token_id: str,
        *,
        owner: str,
        run_id: str,
        outcome: str,
        error: str | None,
        full_sync_required: bool,
        reset_cursor: bool,
        now: datetime,
    ) -> None:
        values: dict[str, Any] = {
            "sync_lease_owner": None,
            "sync_lease_expires_at": None,
            "sync_started_at": None,
            "last_sync_outcome": outcome,
            "last_sync_error": error,
            "full_sync_required": full_sync_required,
            "updated_at": now,
        }
        if outcome == "succeeded":
            values["last_successful_sync_at"] = now
        if reset_cursor:
            values.update(cursor=None, cursor_kind=None, fetch_generation=None)
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(_t.sync_kind, _t.sync_started_at).where(
                        _t.id == token_id, _t.sync_lease_owner == owner, _t.sync_run_id == run_id
                    )
                )
            ).first()
            if row is None:
                return
            if outcome == "succeeded" and row.sync_kind == "full":
                values["last_full_sync_at"] = row.sync_started_at
            await conn.execute(update(dep_tokens).where(_t.id == token_id, _t.sync_run_id == run_id).values(**values))

    async def purge_released(self, before: datetime) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(ade_devices).where(_d.abm_status == "released", _d.released_at < before))
        return result.rowcount


def _row(page: PageWrite, device: SyncedDevice) -> dict[str, Any]:
    released = device.op_type == "deleted"
    return {
        "id": str(uuid.uuid4()),
        "org_id": page.org_id,
        "token_id": page.token_id,
        "serial_number": device.serial_number,
        "model": device.model,
        "description": device.description,
        "color": device.color,
        "asset_tag": device.asset_tag,
        "os": device.os,
        "device_family": device.device_family,
        "abm_profile_uuid": device.profile_uuid,
        "abm_profile_status": device.profile_status,
        "abm_profile_assigned_at": device.profile_assign_time,
        "abm_profile_pushed_at": device.profile_push_time,
        "device_assigned_at": device.device_assigned_date,
        "device_assigned_by": device.device_assigned_by,
        "op_date": device.op_date,
        "abm_status": "released" if released else "assigned",
        "released_at": page.now if released else None,
        "last_seen_run_id": page.fetch_generation,
        "assignment_status": "none",
        "assignment_attempts": 0,
        "enrollment_state": "notContacted",
        "created_at": page.now,
        "updated_at": page.now,
    }
