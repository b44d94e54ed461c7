"""SQL storage of ADE enrollment profiles and of their assignment to ADE devices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import Scope, object_tags
from muster.services.ade_profiles import AdeProfileRow, PendingAssignment
from muster.store.scope_tags import scope_clause
from muster.store.tables import ade_devices, ade_profiles, dep_tokens

_p, _d, _t = ade_profiles.c, ade_devices.c, dep_tokens.c
_CHUNK = 5000
# A profile's tags are read through the tag API (`SqlRbacStore.tags_of`), like every tagged object's.
_PROFILE_COLUMNS = [column for column in ade_profiles.c if column.name != "scope_tag_ids"]


class SqlAdeProfileStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: AdeProfileRow, tag_ids: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(ade_profiles).values(**_values(row), scope_tag_ids=list(object_tags(tag_ids))))

    async def save(self, row: AdeProfileRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(ade_profiles).where(_p.id == row.id).values(**_values(row)))

    async def get(self, org_id: str, profile_id: str) -> AdeProfileRow | None:
        query = select(*_PROFILE_COLUMNS).where(_p.org_id == org_id, _p.id == profile_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return AdeProfileRow(**row._mapping) if row else None

    async def list_for_token(self, token_id: str, scope: Scope) -> list[AdeProfileRow]:
        query = (
            select(*_PROFILE_COLUMNS)
            .where(_p.token_id == token_id, scope_clause(_p.scope_tag_ids, scope))
            .order_by(_p.created_at, _p.id)
        )
        async with self._engine.connect() as conn:
            return [AdeProfileRow(**row._mapping) for row in await conn.execute(query)]

    async def count(self, token_id: str) -> int:
        async with self._engine.connect() as conn:
            query = select(func.count()).select_from(ade_profiles).where(_p.token_id == token_id)
            return (await conn.execute(query)).scalar_one()

    async def delete(self, profile_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(dep_tokens).where(_t.default_ios_profile_id == profile_id).values(default_ios_profile_id=None)
            )
            await conn.execute(
                update(dep_tokens)
                .where(_t.default_macos_profile_id == profile_id)
                .values(default_macos_profile_id=None)
            )
            await conn.execute(delete(ade_profiles).where(_p.id == profile_id))

    async def set_default(self, token_id: str, *, platform: str, profile_id: str) -> None:
        column = "default_ios_profile_id" if platform == "iOS" else "default_macos_profile_id"
        async with self._engine.begin() as conn:
            await conn.execute(update(dep_tokens).where(_t.id == token_id).values({column: profile_id}))

    async def unassigned_serials(self, token_id: str, families: Sequence[str]) -> list[str]:
        query = select(_d.serial_number).where(
            _d.token_id == token_id,
            _d.abm_status == "assigned",
            _d.profile_id.is_(None),
            _d.assignment_status != "failed",
            _d.device_family.in_(families),
        )
        async with self._engine.connect() as conn:
            return [row.serial_number for row in await conn.execute(query)]

    async def serials_of(self, profile_id: str) -> list[str]:
        query = select(_d.serial_number).where(_d.profile_id == profile_id, _d.abm_status == "assigned")
        async with self._engine.connect() as conn:
            return [row.serial_number for row in await conn.execute(query)]

    async def known_serials(self, token_id: str, serials: Sequence[str]) -> set[str]:
        found: set[str] = set()
        async with self._engine.connect() as conn:
            for start in range(0, len(serials), _CHUNK):
                query = select(_d.serial_number).where(
                    _d.token_id == token_id, _d.serial_number.in_(serials[start : start + _CHUNK])
                )
                found.update(row.serial_number for row in await conn.execute(query))
        return found

    async def record_assignment(
        self, token_id: str, profile_id: str, results: Mapping[str, str], *, now: datetime, cooldown: timedelta
    ) -> None:
        """SUCCESS assigns the profile; any other per-serial status is a failure to show and retry later."""
        succeeded = [{"serial": s} for s, status in results.items() if status == "SUCCESS"]
        failed = [{"serial": s, "error": status} for s, status in results.items() if status != "SUCCESS"]
        where = (_d.token_id == token_id, _d.serial_number == bindparam("serial"))
        async with self._engine.begin() as conn:
            if succeeded:
                await conn.execute(
                    update(ade_devices)
                    .where(*where)
                    .values(
                        profile_id=profile_id,
                        assignment_status="succeeded",
                        assignment_error=None,
                        assignment_attempts=0,
                        next_assignment_at=None,
                        updated_at=now,
                    ),
                    succeeded,
                )
            if failed:
                await conn.execute(
                    update(ade_devices)
                    .where(*where)
                    .values(
                        profile_id=profile_id,
                        assignment_status="failed",
                        assignment_error=bindparam("error"),
                        assignment_attempts=_d.assignment_attempts + 1,
                        next_assignment_at=now + cooldown,
                        updated_at=now,
                    ),
                    failed,
                )

    async def failed_due(self, now: datetime, limit: int = 10_000) -> list[PendingAssignment]:
        query = (
            select(_d.token_id, _d.profile_id, _d.serial_number, _d.assignment_attempts)
            .where(
                _d.assignment_status == "failed",
                _d.abm_status == "assigned",
                _d.profile_id.is_not(None),
                or_(_d.next_assignment_at.is_(None), _d.next_assignment_at <= now),
            )
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [
                PendingAssignment(r.token_id, r.profile_id, r.serial_number, r.assignment_attempts)
                for r in await conn.execute(query)
            ]


def _values(row: AdeProfileRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "org_id": row.org_id,
        "token_id": row.token_id,
        "platform": row.platform,
        "display_name": row.display_name,
        "description": row.description,
        "settings": row.settings,
        "abm_profile_uuid": row.abm_profile_uuid,
        "defined_at": row.defined_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
