"""SQL storage for the OAuth side of sign-in: token signing keys, the subjects tokens speak for, replayed client
assertions and pending device-code logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.device_codes import DeviceCodeRow
from muster.store.tables import users
from muster.store.tables_identity import api_clients, device_codes, oauth_seen_assertions, oauth_signing_keys


class SqlSigningKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def all(self, org_id: str) -> list[tuple[str, bytes]]:
        k = oauth_signing_keys.c
        query = select(k.kid, k.key_encrypted).where(k.org_id == org_id).order_by(k.created_at, k.kid)
        async with self._engine.connect() as conn:
            return [(row.kid, row.key_encrypted) for row in await conn.execute(query)]

    async def add(self, *, org_id: str, kid: str, key_encrypted: bytes, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(oauth_signing_keys).values(kid=kid, org_id=org_id, key_encrypted=key_encrypted, created_at=now)
            )


class SqlTokenSubjects:
    """Whether a token's subject may still use it: one primary-key lookup per request."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def active(self, *, org_id: str, kind: str, subject_id: str) -> bool:
        if kind == "user":
            query = select(users.c.account_enabled).where(users.c.id == subject_id, users.c.org_id == org_id)
        else:
            query = select(api_clients.c.id).where(api_clients.c.id == subject_id, api_clients.c.org_id == org_id)
        async with self._engine.connect() as conn:
            return bool((await conn.execute(query)).scalar())


class SqlSeenAssertions:
    """Client-assertion `jti`s already used, kept until the assertion would have expired anyway."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def first_use(self, *, client_id: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record the jti; False when it was seen before (a replay)."""
        t = oauth_seen_assertions
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(t).where(t.c.expires_at < now))
                await conn.execute(insert(t).values(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True


class SqlDeviceCodeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: DeviceCodeRow, *, now: datetime) -> bool:
        """Store a new pending grant; False when its user code collides with a live one."""
        d = device_codes
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(d).where(d.c.expires_at < now))
                await conn.execute(
                    insert(d).values(
                        device_code_sha256=row.device_code_sha256,
                        org_id=row.org_id,
                        user_code=row.user_code,
                        client_id=row.client_id,
                        status=row.status,
                        expires_at=row.expires_at,
                        interval_seconds=row.interval_seconds,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def by_user_code(self, user_code: str) -> DeviceCodeRow | None:
        return await self._one(device_codes.c.user_code == user_code)

    async def by_device_code(self, device_code_sha256: str) -> DeviceCodeRow | None:
        return await self._one(device_codes.c.device_code_sha256 == device_code_sha256)

    async def decide(
        self, *, user_code: str, status: str, user_id: str | None, display_name: str | None, amr: str | None
    ) -> bool:
        """Approve or deny a pending grant; False when it is no longer pending."""
        d = device_codes.c
        query = (
            update(device_codes)
            .where(d.user_code == user_code, d.status == "pending")
            .values(status=status, user_id=user_id, display_name=display_name, amr=amr)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def polled(self, *, device_code_sha256: str, at: datetime, interval_seconds: int) -> None:
        query = (
            update(device_codes)
            .where(device_codes.c.device_code_sha256 == device_code_sha256)
            .values(last_polled_at=at, interval_seconds=interval_seconds)
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

    async def redeem(self, device_code_sha256: str) -> bool:
        """Mark an approved grant used; False when another poll redeemed it first (single use)."""
        d = device_codes.c
        query = (
            update(device_codes)
            .where(d.device_code_sha256 == device_code_sha256, d.status == "approved")
            .values(status="redeemed")
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def _one(self, condition: ColumnElement[bool]) -> DeviceCodeRow | None:
        query = select(device_codes).where(condition)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return DeviceCodeRow(
            device_code_sha256=row.device_code_sha256,
            org_id=row.org_id,
            user_code=row.user_code,
            client_id=row.client_id,
            status=row.status,
            user_id=row.user_id,
            display_name=row.display_name,
            amr=row.amr,
            expires_at=row.expires_at,
            last_polled_at=row.last_polled_at,
            interval_seconds=row.interval_seconds,
        )
