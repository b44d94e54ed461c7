"""SQL storage of the organisation's identity-provider settings, and the directory look-up sign-in needs."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.identity_provider import IdentityProviderConfig
from muster.services.oidc_sign_in import DirectoryUser
from muster.store.tables import users
from muster.store.tables_sign_in import identity_provider_settings


class SqlIdentityProviderStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, org_id: str) -> IdentityProviderConfig | None:
        s = identity_provider_settings.c
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(identity_provider_settings).where(s.org_id == org_id))).first()
        if row is None:
            return None
        return IdentityProviderConfig(
            issuer=row.issuer,
            client_id=row.client_id,
            client_secret_encrypted=row.client_secret_encrypted,
            scopes=tuple(row.scopes.split()),
            user_principal_name_claim=row.user_principal_name_claim,
            require_mfa_for_enrollment=row.require_mfa_for_enrollment,
            mfa_acr_values=tuple(row.mfa_acr_values.split()),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )

    async def save(self, org_id: str, config: IdentityProviderConfig) -> None:
        s = identity_provider_settings.c
        values = {
            "issuer": config.issuer,
            "client_id": config.client_id,
            "client_secret_encrypted": config.client_secret_encrypted,
            "scopes": " ".join(config.scopes),
            "user_principal_name_claim": config.user_principal_name_claim,
            "require_mfa_for_enrollment": config.require_mfa_for_enrollment,
            "mfa_acr_values": " ".join(config.mfa_acr_values),
            "updated_by": config.updated_by,
            "updated_at": config.updated_at,
        }
        async with self._engine.begin() as conn:
            changed = await conn.execute(update(identity_provider_settings).where(s.org_id == org_id).values(values))
            if changed.rowcount == 0:
                await conn.execute(insert(identity_provider_settings).values(org_id=org_id, **values))


class SqlSignInDirectory:
    """Directory users as sign-in sees them; user principal names compare case-insensitively, as in Entra ID."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find_user(self, org_id: str, user_principal_name: str) -> DirectoryUser | None:
        u = users.c
        query = select(u.id, u.user_principal_name, u.display_name, u.account_enabled).where(
            u.org_id == org_id, func.lower(u.user_principal_name) == user_principal_name.lower()
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return DirectoryUser(row.id, row.user_principal_name, row.display_name, bool(row.account_enabled))
