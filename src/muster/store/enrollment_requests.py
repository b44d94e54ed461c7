"""SQL storage of enrollment requests (one-time SCEP challenges), issued certificates and enrollment failures."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.enrollment_requests import EnrollmentIntent, EnrollmentRequest, IssuedCertificate
from muster.store.tables import device_certificates, enrollment_failures, enrollment_requests


class SqlEnrollmentRequestStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_request(
        self,
        *,
        org_id: str,
        challenge_sha256: str,
        intent: EnrollmentIntent,
        created_by: str,
        now: datetime,
        expires_at: datetime,
    ) -> str:
        request_id = str(uuid.uuid4())
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(enrollment_requests).values(
                    id=request_id,
                    org_id=org_id,
                    challenge_sha256=challenge_sha256,
                    user_principal_name=intent.user_principal_name,
                    enrollment_type=intent.enrollment_type,
                    ade_device_id=intent.ade_device_id,
                    device_name=intent.device_name,
                    status="issued",
                    created_by=created_by,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return request_id

    async def find_by_challenge(self, challenge_sha256: str) -> EnrollmentRequest | None:
        r = enrollment_requests.c
        query = select(r.id, r.org_id, r.expires_at, r.consumed_at).where(r.challenge_sha256 == challenge_sha256)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return EnrollmentRequest(row.id, row.org_id, row.expires_at, row.consumed_at)

    async def consume(self, request_id: str, now: datetime) -> bool:
        r = enrollment_requests.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(enrollment_requests)
                .where(r.id == request_id, r.consumed_at.is_(None))
                .values(consumed_at=now, status="challengeConsumed")
            )
        return result.rowcount == 1

    async def record_failure(
        self, *, org_id: str, request_id: str | None, stage: str, reason: str, detail: str, now: datetime
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(enrollment_failures).values(
                    id=str(uuid.uuid4()),
                    org_id=org_id,
                    enrollment_request_id=request_id,
                    stage=stage,
                    reason=reason,
                    detail=detail,
                    occurred_at=now,
                )
            )

    async def record_certificate(self, certificate: IssuedCertificate) -> None:
        async with self._engine.begin() as conn:
            org_id = certificate.default_org_id
            if certificate.enrollment_request_id:
                await conn.execute(
                    update(enrollment_requests)
                    .where(enrollment_requests.c.id == certificate.enrollment_request_id)
                    .values(status="certificateIssued")
                )
                query = select(enrollment_requests.c.org_id).where(
                    enrollment_requests.c.id == certificate.enrollment_request_id
                )
                org_id = (await conn.execute(query)).scalar() or org_id
            await conn.execute(
                insert(device_certificates).values(
                    sha256=certificate.fingerprint,
                    org_id=org_id,
                    enrollment_request_id=certificate.enrollment_request_id,
                    serial_number=certificate.serial_number,
                    subject=certificate.subject,
                    not_after=certificate.not_after,
                    issued_at=certificate.issued_at,
                )
            )
