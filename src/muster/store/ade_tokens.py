"""SQL storage of enrollment program tokens (Graph `depOnboardingSettings`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import Scope, object_tags
from muster.services.ade_tokens import TokenRow, UploadedToken
from muster.store.scope_tags import scope_clause
from muster.store.tables import ade_devices, ade_profiles, dep_tokens

_t, _d, _p = dep_tokens.c, ade_devices.c, ade_profiles.c


def _token_query() -> Any:
    devices = (
        select(func.count())
        .select_from(ade_devices)
        .where(_d.token_id == _t.id, _d.abm_status == "assigned")
        .scalar_subquery()
    )
    profiles = select(func.count()).select_from(ade_profiles).where(_p.token_id == _t.id).scalar_subquery()
    return select(
        _t.id,
        _t.org_id,
        _t.name,
        _t.program,
        _t.certificate_pem,
        _t.key_encrypted,
        _t.credentials_encrypted,
        _t.apple_id,
        _t.server_uuid,
        _t.server_name,
        _t.abm_org_name,
        _t.abm_org_id,
        _t.token_expires_at,
        _t.last_sync_started_at,
        _t.last_successful_sync_at,
        _t.last_sync_outcome,
        _t.last_sync_error,
        _t.sync_started_at,
        _t.sync_lease_expires_at,
        _t.default_ios_profile_id,
        _t.default_macos_profile_id,
        _t.created_at,
        _t.updated_at,
        devices.label("device_count"),
        profiles.label("profile_count"),
    )


class SqlTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self,
        *,
        token_id: str,
        org_id: str,
        name: str,
        certificate_pem: str,
        key_encrypted: bytes,
        tag_ids: Sequence[str],
        now: datetime,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(dep_tokens).values(
                    id=token_id,
                    org_id=org_id,
                    name=name,
                    program="dep",
                    certificate_pem=certificate_pem,
                    key_encrypted=key_encrypted,
                    expiry_warnings_sent=[],
                    full_sync_required=False,
                    sync_manual=False,
                    sync_devices_seen=0,
                    scope_tag_ids=list(object_tags(tag_ids)),
                    created_at=now,
                    updated_at=now,
                )
            )

    async def get(self, org_id: str, token_id: str) -> TokenRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_token_query().where(_t.org_id == org_id, _t.id == token_id))).first()
        return TokenRow(**row._mapping) if row else None

    async def get_by_id(self, token_id: str) -> TokenRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_token_query().where(_t.id == token_id))).first()
        return TokenRow(**row._mapping) if row else None

    async def list_for_org(self, org_id: str, scope: Scope) -> list[TokenRow]:
        query = _token_query().where(_t.org_id == org_id, scope_clause(_t.scope_tag_ids, scope))
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(_t.created_at, _t.id))
            return [TokenRow(**row._mapping) for row in rows]

    async def count(self, org_id: str) -> int:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(select(func.count()).select_from(dep_tokens).where(_t.org_id == org_id))
            ).scalar_one()

    async def set_uploaded(self, token_id: str, uploaded: UploadedToken, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(dep_tokens)
                .where(_t.id == token_id)
                .values(
                    credentials_encrypted=uploaded.credentials_encrypted,
                    apple_id=uploaded.apple_id,
                    server_uuid=uploaded.server_uuid,
                    server_name=uploaded.server_name,
                    abm_org_name=uploaded.abm_org_name,
                    abm_org_id=uploaded.abm_org_id,
                    program=uploaded.program,
                    token_expires_at=uploaded.expires_at,
                    expiry_warnings_sent=[],
                    updated_at=now,
                )
            )

    async def deletion_counts(self, token_id: str) -> tuple[int, int, int]:
        defaults = select(_t.default_ios_profile_id, _t.default_macos_profile_id).where(_t.id == token_id)
        async with self._engine.connect() as conn:
            ios, macos = (await conn.execute(defaults)).one()
            assigned = (
                await conn.execute(
                    select(func.count())
                    .select_from(ade_devices)
                    .where(_d.token_id == token_id, _d.abm_status == "assigned")
                )
            ).scalar_one()
            default_ids = [i for i in (ios, macos) if i]
            on_default = (
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(ade_devices)
                        .where(_d.token_id == token_id, _d.profile_id.in_(default_ids))
                    )
                ).scalar_one()
                if default_ids
                else 0
            )
            profiles = (
                await conn.execute(select(func.count()).select_from(ade_profiles).where(_p.token_id == token_id))
            ).scalar_one()
        return assigned, on_default, profiles

    async def delete(self, token_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(ade_devices).where(_d.token_id == token_id, _d.abm_status == "released"))
            await conn.execute(delete(dep_tokens).where(_t.id == token_id))

    async def expiring(self) -> list[tuple[str, datetime, list[int]]]:
        query = select(_t.id, _t.token_expires_at, _t.expiry_warnings_sent).where(_t.token_expires_at.is_not(None))
        async with self._engine.connect() as conn:
            return [(r.id, r.token_expires_at, list(r.expiry_warnings_sent or [])) for r in await conn.execute(query)]

    async def mark_warned(self, token_id: str, sent: list[int]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(dep_tokens).where(_t.id == token_id).values(expiry_warnings_sent=sent))

    async def delete_device(self, token_id: str, device_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(ade_devices).where(_d.token_id == token_id, _d.id == device_id))
        return result.rowcount == 1
