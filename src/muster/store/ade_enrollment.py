"""SQL queries for the device side of ADE."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.ade_enrollment import AdeEnrollmentTarget
from muster.store.tables import ade_devices, ade_profiles, dep_tokens, enrollment_failures

_d, _p, _t = ade_devices.c, ade_profiles.c, dep_tokens.c


class SqlAdeEnrollmentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def enrollment_target(self, serial_number: str) -> AdeEnrollmentTarget | None:
        query = (
            select(
                _d.id,
                _d.org_id,
                _d.serial_number,
                _d.device_family,
                _t.token_expires_at,
                _p.platform,
                _p.settings,
                _d.assignment_status,
            )
            .select_from(
                ade_devices.join(dep_tokens, _t.id == _d.token_id).outerjoin(ade_profiles, _p.id == _d.profile_id)
            )
            .where(_d.serial_number == serial_number, _d.abm_status == "assigned")
            .order_by(_d.updated_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return AdeEnrollmentTarget(
            row.id,
            row.org_id,
            row.serial_number,
            row.device_family,
            row.token_expires_at,
            row.platform,
            row.settings,
            row.assignment_status,
        )

    async def record_failure(self, *, org_id: str, serial_number: str, reason: str, detail: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(enrollment_failures).values(
                    id=str(uuid.uuid4()),
                    org_id=org_id,
                    stage="adeProfileRequest",
                    reason=reason,
                    detail=f"{serial_number}: {detail}",
                    occurred_at=now,
                )
            )
