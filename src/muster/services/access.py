"""Who is calling and what they may do: bearer tokens to principals, and principals to their grants.

A principal's grants come from its own API token role (bootstrap `mst_` tokens) and from every role assignment
whose members name the principal or a group it belongs to (nested groups included). Resolved principals are kept
a few seconds, and forgotten at once in this process when roles, assignments or tags change; other server
processes see a change within that time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence

from muster.domain.rbac import Grant, Permission, Principal, Scope, TokenSubject, TokenVerifier
from muster.services.admins import Admins
from muster.services.rbac_ports import RbacStore, RoleAssignmentRow

CACHE_SECONDS = 5.0
MAX_CACHED = 10_000


class Authenticator:
    def __init__(
        self,
        *,
        admins: Admins,
        store: RbacStore,
        verifiers: Sequence[TokenVerifier] = (),
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._admins = admins
        self._store = store
        self._verifiers = tuple(verifiers)
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def invalidate(self) -> None:
        """Forget every resolved principal (called whenever roles, assignments or scope tags change)."""
        self._cache.clear()

    async def authenticate(self, bearer: str) -> Principal | None:
        """The principal `bearer` stands for, with its grants; None when no verifier accepts it."""
        key = hashlib.sha256(bearer.encode()).hexdigest()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await self._resolve(bearer)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)
        return principal

    async def _resolve(self, bearer: str) -> Principal | None:
        token = await self._admins.find(bearer)
        if token is not None:
            grants = (token.grant(), *await self._assigned(token.org_id, {token.id}))
            return Principal(token.id, "apiToken", token.name, token.org_id, grants)
        for verifier in self._verifiers:
            subject = await verifier.verify(bearer)
            if subject is not None:
                return await self._principal(subject)
        return None

    async def _principal(self, subject: TokenSubject) -> Principal:
        ids = {subject.subject_id}
        if subject.kind == "user":
            ids |= await self._store.groups_of(subject.subject_id)
        grants = await self._assigned(subject.org_id, ids)
        return Principal(subject.subject_id, subject.kind, subject.display_name, subject.org_id, grants)

    async def _assigned(self, org_id: str, principal_ids: set[str]) -> tuple[Grant, ...]:
        assignments = [a for a in await self._store.role_assignments(org_id) if principal_ids & set(a.members)]
        if not assignments:
            return ()
        roles = {r.id: r for r in await self._store.role_definitions(org_id)}
        return tuple(
            assignment_grant(a, roles[a.role_definition_id].permissions)
            for a in assignments
            if a.role_definition_id in roles
        )


def assignment_grant(assignment: RoleAssignmentRow, permissions: Iterable[str]) -> Grant:
    """What one role assignment gives its members: the role's permissions over the assignment's scope tags."""
    tags = assignment.scope_tag_ids
    scope = Scope(everything=True) if tags is None else Scope(tag_ids=frozenset(tags))
    known = frozenset(Permission(p) for p in permissions if p in _KNOWN)  # one removed since grants nothing
    return Grant(known, scope, frozenset(assignment.scope_group_ids))


_KNOWN = frozenset(p.value for p in Permission)
