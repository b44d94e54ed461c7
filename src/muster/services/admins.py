"""Administrator credentials: bearer API tokens with a role (the identity issue generalises this to RBAC).

A token is shown once when created and stored only as its SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from muster.domain.clock import Clock

TOKEN_PREFIX = "mst_"


class Role(StrEnum):
    INTUNE_ADMINISTRATOR = "Intune Administrator"
    READ_ONLY_OPERATOR = "Read Only Operator"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"


ROLE_PERMISSIONS = {
    Role.INTUNE_ADMINISTRATOR: frozenset(Permission),
    Role.READ_ONLY_OPERATOR: frozenset({Permission.READ}),
}


@dataclass(frozen=True)
class Admin:
    token_id: str
    name: str
    org_id: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


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
        self._cache: dict[str, Admin] = {}

    async def create_token(self, *, org_id: str, name: str, role: Role) -> str:
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

    async def authenticate(self, token: str) -> Admin | None:
        digest = token_hash(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        found = await self._store.find(digest)
        if found is None:
            return None
        admin = Admin(token_id=found[0], name=found[1], org_id=found[2], role=Role(found[3]))
        self._cache[digest] = admin
        return admin
