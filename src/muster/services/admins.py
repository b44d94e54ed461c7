"""Bootstrap administrator credentials: bearer API tokens bound to a built-in role over every scope tag.

A token is shown once when created and stored only as its SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.rbac import BUILT_IN_ROLE_PERMISSIONS, BuiltInRole, Grant, Principal, Scope

TOKEN_PREFIX = "mst_"


class ApiTokenStore(Protocol):
    async def add(
        self, *, token_id: str, org_id: str, name: str, token_sha256: str, role: str, now: datetime
    ) -> None: ...

    async def find(self, token_sha256: str) -> tuple[str, str, str, str] | None:
        """(token id, name, org id, role) of an unrevoked token."""

    async def count(self, org_id: str) -> int: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Admins:
    def __init__(self, *, store: ApiTokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, Principal] = {}

    async def create_token(self, *, org_id: str, name: str, role: BuiltInRole) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._store.add(
            token_id=secrets.token_hex(16),
            org_id=org_id,
            name=name,
            token_sha256=token_hash(token),
            role=role.value,
            now=self._clock.now(),
        )
        return token

    async def any_token(self, org_id: str) -> bool:
        return await self._store.count(org_id) > 0

    async def authenticate(self, token: str) -> Principal | None:
        digest = token_hash(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        found = await self._store.find(digest)
        if found is None:
            return None
        role = BuiltInRole(found[3])
        grant = Grant(BUILT_IN_ROLE_PERMISSIONS[role], Scope(everything=True))
        admin = Principal(id=found[0], kind="apiToken", display_name=found[1], org_id=found[2], grants=(grant,))
        self._cache[digest] = admin
        return admin
