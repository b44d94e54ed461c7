"""Bootstrap administrator credentials: bearer API tokens bound to a built-in role, over every scope tag unless the
token was created with scope tags.

A token is shown once when created and stored only as its SHA-256. Its id may also be a member of role assignments,
which add their grants to the token's own role (see `services.access`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.rbac import BUILT_IN_ROLE_PERMISSIONS, BuiltInRole, Grant, Scope, object_tags

TOKEN_PREFIX = "mst_"


@dataclass(frozen=True)
class ApiTokenRecord:
    id: str
    org_id: str
    name: str
    role: str
    scope_tag_ids: tuple[str, ...] | None  # None: every scope tag

    def grant(self) -> Grant:
        """The token's own role over its scope."""
        scope = Scope(everything=True) if self.scope_tag_ids is None else Scope(tag_ids=frozenset(self.scope_tag_ids))
        return Grant(BUILT_IN_ROLE_PERMISSIONS[BuiltInRole(self.role)], scope)


class ApiTokenStore(Protocol):
    async def add(self, token: ApiTokenRecord, *, token_sha256: str, now: datetime) -> None: ...

    async def find(self, token_sha256: str) -> ApiTokenRecord | None:
        """The unrevoked token with this hash."""

    async def count(self, org_id: str) -> int: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Admins:
    def __init__(self, *, store: ApiTokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create_token(
        self, *, org_id: str, name: str, role: BuiltInRole, scope_tag_ids: Sequence[str] | None = None
    ) -> str:
        """A new token for `role`, over every scope tag or (given `scope_tag_ids`) over those tags only."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        tags = None if scope_tag_ids is None else object_tags(scope_tag_ids)
        record = ApiTokenRecord(secrets.token_hex(16), org_id, name, role.value, tags)
        await self._store.add(record, token_sha256=token_hash(token), now=self._clock.now())
        return token

    async def any_token(self, org_id: str) -> bool:
        return await self._store.count(org_id) > 0

    async def find(self, token: str) -> ApiTokenRecord | None:
        """The API token `token` names, when it is one of ours and not revoked."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        return await self._store.find(token_hash(token))
