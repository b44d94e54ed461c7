"""SQL storage of administrator API tokens and the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.clock import Clock
from muster.services.audit import redact
from muster.store.fit import fit
from muster.store.tables import api_tokens, audit_events


class SqlApiTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, *, token_id: str, org_id: str, name: str, token_sha256: str, role: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_tokens).values(
                    id=token_id,
                    org_id=org_id,
                    name=name,
                    token_sha256=token_sha256,
                    role=role,
                    created_at=now,
                )
            )

    async def find(self, token_sha256: str) -> tuple[str, str, str, str] | None:
        t = api_tokens.c
        query = select(t.id, t.name, t.org_id, t.role).where(t.token_sha256 == token_sha256, t.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.id, row.name, row.org_id, row.role) if row else None

    async def count(self, org_id: str) -> int:
        query = select(func.count()).select_from(api_tokens).where(api_tokens.c.org_id == org_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()


class SqlAuditSink:
    """Writes audit events; details pass through `redact` so no secret reaches the table."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock, org_id: str) -> None:
        self._engine = engine
        self._clock = clock
        self._org = org_id

    async def device_event(self, *, activity: str, target: str, detail: Mapping[str, Any]) -> None:
        await self._write(
            actor="device",
            category="device",
            activity=activity,
            target=target,
            detail=detail,
            result="failure",
        )

    async def admin_event(
        self,
        *,
        actor: str,
        activity: str,
        target: str | None,
        detail: Mapping[str, Any],
        result: str = "success",
    ) -> None:
        await self._write(actor=actor, category="admin", activity=activity, target=target, detail=detail, result=result)

    async def _write(self, **values: Any) -> None:
        values["detail"] = redact(values["detail"])
        values = fit(audit_events, values)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(audit_events).values(
                    id=str(uuid.uuid4()), org_id=self._org, occurred_at=self._clock.now(), **values
                )
            )
