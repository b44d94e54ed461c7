"""SQL storage of local sign-in credentials (table `user_credentials`, next to the directory's `users`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.local_accounts import Account, Credentials
from muster.store.tables import users
from muster.store.tables_identity import user_credentials


class SqlLocalAccountStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def by_upn(self, org_id: str, user_principal_name: str) -> Account | None:
        upn = users.c.user_principal_name
        return await self._account(users.c.org_id == org_id, func.lower(upn) == user_principal_name.lower())

    async def by_id(self, org_id: str, user_id: str) -> Account | None:
        return await self._account(users.c.org_id == org_id, users.c.id == user_id)

    async def set_password(
        self, user_id: str, *, password_hash: str, totp_required: bool, reset_totp: bool, now: datetime
    ) -> None:
        values: dict[str, Any] = {
            "password_hash": password_hash,
            "totp_required": totp_required,
            "failed_attempts": 0,
            "locked_until": None,
            "updated_at": now,
        }
        if reset_totp:
            values |= {"totp_secret_encrypted": None, "totp_confirmed_at": None}
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(user_credentials).where(user_credentials.c.user_id == user_id).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(user_credentials).values(user_id=user_id, **values))

    async def failed(self, user_id: str, *, limit: int, locked_until: datetime) -> int:
        c = user_credentials.c
        count = (
            update(user_credentials)
            .where(c.user_id == user_id)
            .values(failed_attempts=c.failed_attempts + 1)
            .returning(c.failed_attempts)
        )
        async with self._engine.begin() as conn:
            attempts = int((await conn.execute(count)).scalar_one())
            if attempts >= limit:
                lock = update(user_credentials).where(c.user_id == user_id).values(failed_attempts=0)
                await conn.execute(lock.values(locked_until=locked_until))
        return attempts

    async def succeeded(self, user_id: str) -> None:
        await self._update(user_id, failed_attempts=0, locked_until=None)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        c = user_credentials.c
        query = (
            update(user_credentials)
            .where(c.user_id == user_id, or_(c.last_totp_step.is_(None), c.last_totp_step < step))
            .values(last_totp_step=step)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def start_totp(self, user_id: str, secret_encrypted: bytes) -> None:
        await self._update(user_id, totp_secret_encrypted=secret_encrypted, totp_confirmed_at=None)

    async def confirm_totp(self, user_id: str, now: datetime) -> None:
        await self._update(user_id, totp_confirmed_at=now)

    async def _update(self, user_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(user_credentials).where(user_credentials.c.user_id == user_id).values(**values))

    async def _account(self, *conditions: ColumnElement[bool]) -> Account | None:
        u, c = users.c, user_credentials.c
        query = (
            select(u.id, u.user_principal_name, u.display_name, u.account_enabled, user_credentials)
            .select_from(users.outerjoin(user_credentials, c.user_id == u.id))
            .where(*conditions)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        credentials = None
        if row.password_hash is not None:
            credentials = Credentials(
                password_hash=row.password_hash,
                totp_required=row.totp_required,
                totp_secret_encrypted=row.totp_secret_encrypted,
                totp_confirmed=row.totp_confirmed_at is not None,
                locked_until=row.locked_until,
            )
        return Account(row.id, row.user_principal_name, row.display_name, row.account_enabled, credentials)
