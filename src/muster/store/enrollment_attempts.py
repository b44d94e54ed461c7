"""SQL storage of enrollment attempts (E27). Whether an attempt's device enrolled is read from the device side:
the certificate issued for its enrollment request, bound at Authenticate to an enrollment that has sent its
first TokenUpdate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.enrollment_attempts import Attempt, Platform, Screen
from muster.store.tables import device_certificates, enrollments
from muster.store.tables_enrollment_attempts import enrollment_attempts

a = enrollment_attempts.c


def _enrolled() -> ColumnElement[bool]:
    return exists().where(
        and_(
            device_certificates.c.enrollment_request_id == a.enrollment_request_id,
            enrollments.c.id == device_certificates.c.enrollment_id,
            enrollments.c.token_updated_at.is_not(None),
        )
    )


def _attempts() -> Select[Any]:
    return select(
        a.id,
        a.user_principal_name,
        a.platform,
        a.started_at,
        a.screen,
        a.screen_at,
        a.declined_at,
        _enrolled().label("enrolled"),
    )


def _attempt(row: Mapping[str, Any]) -> Attempt:
    return Attempt(
        id=row["id"],
        user_principal_name=row["user_principal_name"],
        platform=Platform(row["platform"]),
        started_at=row["started_at"],
        screen=Screen(row["screen"]),
        screen_at=row["screen_at"],
        declined_at=row["declined_at"],
        enrolled=bool(row["enrolled"]),
    )


class SqlAttemptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, org_id: str, portal_session: str, attempt: Attempt) -> None:
        values = {name: value for name, value in vars(attempt).items() if name != "enrolled"}
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(enrollment_attempts).values(**values, org_id=org_id, portal_session=portal_session)
            )

    async def latest_for_session(self, org_id: str, portal_session: str) -> Attempt | None:
        query = (
            _attempts()
            .where(a.org_id == org_id, a.portal_session == portal_session)
            .order_by(a.started_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return _attempt(found._mapping) if found else None

    async def reach(self, attempt_id: str, screen: Screen, now: datetime, enrollment_request_id: str | None) -> None:
        values: dict[str, Any] = {"screen": screen.value, "screen_at": now}
        if enrollment_request_id is not None:
            values["enrollment_request_id"] = enrollment_request_id
        async with self._engine.begin() as conn:
            await conn.execute(update(enrollment_attempts).where(a.id == attempt_id).values(values))

    async def decline(self, attempt_id: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(enrollment_attempts).where(a.id == attempt_id).values(declined_at=now))

    async def started_between(self, org_id: str, start: datetime, end: datetime) -> list[Attempt]:
        query = (
            _attempts()
            .where(a.org_id == org_id, a.started_at >= start, a.started_at < end)
            .order_by(a.started_at.desc(), a.id)
        )
        async with self._engine.connect() as conn:
            return [_attempt(row._mapping) for row in await conn.execute(query)]
