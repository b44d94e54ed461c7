"""SQL storage of push certificates and their pending signing requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.push_certificates import PushCertificateRow
from muster.store.tables import push_certificates


class SqlPushCertificateStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def latest(self, org_id: str, status: str) -> PushCertificateRow | None:
        p = push_certificates.c
        query = (
            select(
                p.id,
                p.status,
                p.csr_pem,
                p.key_encrypted,
                p.certificate_pem,
                p.topic,
                p.apple_id,
                p.serial_number,
                p.not_after,
                p.uploaded_at,
            )
            .where(p.org_id == org_id, p.status == status)
            .order_by(p.created_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return PushCertificateRow(**row._mapping) if row else None

    async def add_request(self, *, org_id: str, row_id: str, csr_pem: str, key_encrypted: bytes, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(push_certificates).values(
                    id=row_id,
                    org_id=org_id,
                    status="awaitingCertificate",
                    csr_pem=csr_pem,
                    key_encrypted=key_encrypted,
                    created_at=now,
                )
            )

    async def activate(
        self,
        *,
        org_id: str,
        row_id: str,
        certificate_pem: str,
        topic: str,
        apple_id: str | None,
        serial_number: str,
        not_after: datetime,
        now: datetime,
    ) -> None:
        p = push_certificates.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(push_certificates).where(p.org_id == org_id, p.status == "active").values(status="replaced")
            )
            await conn.execute(
                update(push_certificates)
                .where(p.id == row_id)
                .values(
                    status="active",
                    certificate_pem=certificate_pem,
                    topic=topic,
                    apple_id=apple_id,
                    serial_number=serial_number,
                    not_after=not_after,
                    uploaded_at=now,
                )
            )

    async def retire(self, org_id: str, row_id: str) -> None:
        p = push_certificates.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(push_certificates).where(p.org_id == org_id, p.id == row_id).values(status="deleted")
            )
