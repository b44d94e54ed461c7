"""SQL storage of administrator API tokens (the audit trail is in muster.store.audit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.admins import ApiTokenRecord
from muster.store.tables import api_tokens


class SqlApiTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, token: ApiTokenRecord, *, token_sha256: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_tokens).values(
                    id=token.id,
                    org_id=token.org_id,
                    name=token.name,
                    token_sha256=token_sha256,
                    role=token.role,
                    scope_tag_ids=None if token.scope_tag_ids is None else list(token.scope_tag_ids),
                    created_at=now,
                )
            )

    async def find(self, token_sha256: str) -> ApiTokenRecord | None:
        t = api_tokens.c
        query = select(t.id, t.name, t.org_id, t.role, t.scope_tag_ids).where(
            t.token_sha256 == token_sha256, t.revoked_at.is_(None)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        tags = None if row.scope_tag_ids is None else tuple(row.scope_tag_ids)
        return ApiTokenRecord(row.id, row.org_id, row.name, row.role, tags)

    async def count(self, org_id: str) -> int:
        query = select(func.count()).select_from(api_tokens).where(api_tokens.c.org_id == org_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()
