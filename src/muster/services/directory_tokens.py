"""Provisioning tokens: the bearer secrets an identity provider presents to Muster's SCIM endpoint.

An admin creates one per provisioning connection (Entra ID enterprise app, Okta app); the secret is shown once
and stored as its SHA-256 (it is 256 random bits, so a slow password hash would add nothing). Revoking a token
stops that connection at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any, Protocol

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotFound
from muster.services.audit import AuditSink

SECRET_PREFIX = "mscim_"


class ProvisioningTokenStore(Protocol):
    async def add(self, row: dict[str, Any]) -> None: ...

    async def list(self, org_id: str) -> list[dict[str, Any]]:
        """Unrevoked tokens, without their hashes."""

    async def revoke(self, org_id: str, token_id: str, now: datetime) -> bool: ...

    async def org_of(self, secret_sha256: str, now: datetime) -> tuple[str, str] | None:
        """(organisation, token name) of an unrevoked token with this hash, recording its use."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ProvisioningTokens:
    def __init__(self, *, store: ProvisioningTokenStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(self, org_id: str, display_name: str, *, actor: str) -> tuple[dict[str, Any], str]:
        """The new token's row and its secret, which is never available again."""
        if not display_name.strip():
            raise InvalidInput("displayName is required")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "org_id": org_id,
            "display_name": display_name.strip(),
            "created_by": actor,
            "created_at": self._clock.now(),
        }
        await self._store.add({**row, "secret_sha256": secret_hash(secret)})
        await self._audit.admin_event(
            actor=actor, activity="createProvisioningToken", target=row["id"], detail={"displayName": display_name}
        )
        return row, secret

    async def list(self, org_id: str) -> list[dict[str, Any]]:
        return await self._store.list(org_id)

    async def revoke(self, org_id: str, token_id: str, *, actor: str) -> None:
        if not await self._store.revoke(org_id, token_id, self._clock.now()):
            raise NotFound(f"provisioning token {token_id} not found")
        await self._audit.admin_event(actor=actor, activity="revokeProvisioningToken", target=token_id, detail={})

    async def authenticate(self, secret: str) -> tuple[str, str] | None:
        """(organisation, token name) for a presented secret, or None."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
            return None
        return await self._store.org_of(secret_hash(secret), self._clock.now())
