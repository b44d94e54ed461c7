"""SQL storage of data-sharing consents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.store.tables import data_sharing_consents


class SqlConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def granted(self, org_id: str, consent_id: str) -> tuple[str, datetime] | None:
        c = data_sharing_consents.c
        query = select(c.granted_by, c.granted_at).where(c.org_id == org_id, c.id == consent_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.granted_by, row.granted_at) if row else None

    async def grant(self, org_id: str, consent_id: str, granted_by: str, now: datetime) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(data_sharing_consents).values(
                        org_id=org_id, id=consent_id, granted_by=granted_by, granted_at=now
                    )
                )
        except IntegrityError:
            pass  # granted concurrently: a consent is given once
