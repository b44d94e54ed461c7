"""SQL storage of the server's own key pairs (device CA, profile signing); keys are stored encrypted."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.store.tables import key_pairs


class SqlKeyPairStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, *, org_id: str, purpose: str) -> tuple[bytes, bytes] | None:
        k = key_pairs.c
        query = select(k.certificate_pem, k.key_encrypted).where(k.org_id == org_id, k.purpose == purpose)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.certificate_pem.encode(), row.key_encrypted) if row else None

    async def add_if_absent(
        self, *, org_id: str, purpose: str, certificate_pem: bytes, key_encrypted: bytes, now: datetime
    ) -> tuple[bytes, bytes]:
        """Store a new pair unless another server process stored one first; returns the pair that won."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(key_pairs).values(
                        id=str(uuid.uuid4()),
                        org_id=org_id,
                        purpose=purpose,
                        certificate_pem=certificate_pem.decode(),
                        key_encrypted=key_encrypted,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass
        stored = await self.get(org_id=org_id, purpose=purpose)
        assert stored is not None
        return stored
