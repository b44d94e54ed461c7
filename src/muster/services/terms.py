"""Terms and conditions (seed-catalog-A §2.8 TC-01..11, E19): policies, their assignment to users, and users'
acceptance.

A policy is assigned to all users or to groups (TC-02; several policies for several groups give localized terms,
TC-09). A user has pending terms when a policy reaches them and they have not accepted its current version
(TC-01, TC-05); acceptance is per user, not per device (TC-06). Each acceptance and each decline is kept with its
time: the acceptance report (TC-07) and the incomplete-enrollment report (TC-10) read them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from muster.domain.assignments import AssignmentTarget, TargetKind, match, parse_targets
from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Scope
from muster.domain.terms import (
    FIRST_VERSION,
    MAX_BODY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SUMMARY_LENGTH,
    MAX_TITLE_LENGTH,
    Acceptance,
    check_acceptable,
    next_version,
)

TERMS_TARGETS = (TargetKind.GROUP, TargetKind.EXCLUDED_GROUP, TargetKind.ALL_USERS)  # TC-02: all users or groups


@dataclass(frozen=True)
class TermsText:
    """What the admin writes: Name and Description (admins only), and what users see (TC-02, TC-03)."""

    display_name: str | None = None
    description: str | None = None
    title: str | None = None
    body_text: str | None = None
    acceptance_statement: str | None = None  # Intune's "Summary of Terms", shown under the title


@dataclass(frozen=True)
class TermsRow:
    id: str
    org_id: str
    display_name: str
    description: str | None
    title: str | None
    body_text: str | None
    acceptance_statement: str | None
    version: int
    targets: tuple[AssignmentTarget, ...]
    scope_tag_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


class TermsStore(Protocol):
    async def add(self, row: TermsRow) -> None: ...

    async def all(self, org_id: str, scope: Scope) -> list[TermsRow]: ...

    async def get(self, org_id: str, terms_id: str) -> TermsRow | None: ...

    async def update(self, row: TermsRow) -> None: ...

    async def delete(self, org_id: str, terms_id: str) -> None:
        """The policy and, with it, its acceptances and declines."""

    async def accepted(self, org_id: str, user_id: str) -> set[tuple[str, int]]:
        """The (terms id, version) pairs the user has accepted."""

    async def add_acceptance(self, org_id: str, terms_id: str, acceptance: Acceptance) -> None:
        """Record it, unless the user accepted that version already (the first time is the one that counts)."""

    async def acceptances(self, org_id: str, terms_id: str) -> list[Acceptance]:
        """Every acceptance of the policy, oldest first, with the user's current display name."""

    async def add_decline(
        self, *, org_id: str, terms_id: str, user_id: str, upn: str, version: int, now: datetime
    ) -> None: ...


class Terms:
    def __init__(self, *, store: TermsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self, *, org_id: str, text: TermsText, tag_ids: tuple[str, ...], version: int | None = None
    ) -> TermsRow:
        """TC-02, TC-04: a new policy, at version 1, assigned to nobody yet."""
        if text.display_name is None:
            raise InvalidInput("displayName is required")
        if version not in (None, FIRST_VERSION):
            raise InvalidInput(f"new terms and conditions start at version {FIRST_VERSION}")
        now = self._clock.now()
        row = _with_text(
            TermsRow(str(uuid.uuid4()), org_id, "", None, None, None, None, FIRST_VERSION, (), tag_ids, now, now),
            text,
        )
        await self._store.add(row)
        return row

    async def all(self, org_id: str, scope: Scope) -> list[TermsRow]:
        return await self._store.all(org_id, scope)

    async def get(self, org_id: str, terms_id: str, scope: Scope) -> TermsRow:
        """The policy; one outside `scope` is "not found", so an admin learns nothing of it."""
        row = await self._store.get(org_id, terms_id)
        if row is None or not scope.covers(row.scope_tag_ids):
            raise NotFound(f"terms and conditions {terms_id} not found")
        return row

    async def update(
        self,
        org_id: str,
        terms_id: str,
        scope: Scope,
        *,
        text: TermsText,
        version: int | None = None,
        tag_ids: tuple[str, ...] | None = None,
    ) -> TermsRow:
        """TC-05: the version stays (earlier acceptances remain valid) unless set to the next one, which asks
        every assigned user to accept again."""
        row = await self.get(org_id, terms_id, scope)
        updated = replace(
            _with_text(row, text),
            version=next_version(row.version, version),
            scope_tag_ids=row.scope_tag_ids if tag_ids is None else tag_ids,
            updated_at=self._clock.now(),
        )
        await self._store.update(updated)
        return updated

    async def delete(self, org_id: str, terms_id: str, scope: Scope) -> None:
        await self.get(org_id, terms_id, scope)
        await self._store.delete(org_id, terms_id)

    async def assign(self, org_id: str, terms_id: str, scope: Scope, assignments: Any) -> TermsRow:
        """Replace the policy's assignments with Graph `termsAndConditionsAssignments` ({"target": ...})."""
        row = await self.get(org_id, terms_id, scope)
        targets = parse_targets(assignments, allowed=TERMS_TARGETS)
        if any(target.filter_id is not None for target in targets):
            raise InvalidInput("terms and conditions are assigned to users: they take no assignment filter")
        updated = replace(row, targets=targets, updated_at=self._clock.now())
        await self._store.update(updated)
        return updated

    async def pending_for(self, org_id: str, user_id: str, group_ids: frozenset[str]) -> list[TermsRow]:
        """The policies assigned to the user (directly, through `group_ids`, or to all users) whose current
        version they have not accepted, oldest policy first (TC-01, TC-05, TC-06)."""
        return assigned_to(await self.unaccepted(org_id, user_id), group_ids)

    async def unaccepted(self, org_id: str, user_id: str) -> list[TermsRow]:
        """Every policy whose current version the user has not accepted, assigned to them or not (the enrollment
        gate reads it while it looks the user's groups up, then keeps those `assigned_to` them)."""
        accepted, rows = await asyncio.gather(
            self._store.accepted(org_id, user_id), self._store.all(org_id, Scope(everything=True))
        )
        return [row for row in rows if (row.id, row.version) not in accepted]

    async def accept(self, org_id: str, user_id: str, upn: str, terms_id: str, version: int, now: datetime) -> None:
        """The user accepts the version they were shown, which must be the current one."""
        row = await self._for_user(org_id, terms_id)
        check_acceptable(row.version, version)
        await self._store.add_acceptance(org_id, terms_id, Acceptance(user_id, None, upn, version, now))

    async def decline(self, org_id: str, user_id: str, upn: str, terms_id: str, version: int, now: datetime) -> None:
        """TC-10: recorded with its time; the enrollment stays incomplete until the user accepts."""
        row = await self._for_user(org_id, terms_id)
        if not FIRST_VERSION <= version <= row.version:
            raise InvalidInput(f"version must be between {FIRST_VERSION} and {row.version}")
        await self._store.add_decline(
            org_id=org_id, terms_id=terms_id, user_id=user_id, upn=upn, version=version, now=now
        )

    async def acceptances(self, org_id: str, terms_id: str, scope: Scope) -> tuple[TermsRow, list[Acceptance]]:
        """The policy and every acceptance of it, oldest first: who accepted which version when (TC-07)."""
        row = await self.get(org_id, terms_id, scope)
        return row, await self._store.acceptances(org_id, terms_id)

    async def latest_acceptances(self, org_id: str, terms_id: str, scope: Scope) -> tuple[TermsRow, list[Acceptance]]:
        """The policy and each user's latest acceptance (Graph's acceptance statuses: one per user)."""
        row, history = await self.acceptances(org_id, terms_id, scope)
        latest = {acceptance.user_id: acceptance for acceptance in history}  # oldest first: the last one wins
        return row, list(latest.values())

    async def _for_user(self, org_id: str, terms_id: str) -> TermsRow:
        row = await self._store.get(org_id, terms_id)
        if row is None:
            raise NotFound(f"terms and conditions {terms_id} not found")
        return row


def _no_filters(filter_id: str) -> bool:
    raise AssertionError("terms and conditions are assigned without filters")  # `assign` refuses them


_LIMITS = {
    "display_name": MAX_NAME_LENGTH,
    "description": MAX_DESCRIPTION_LENGTH,
    "title": MAX_TITLE_LENGTH,
    "body_text": MAX_BODY_LENGTH,
    "acceptance_statement": MAX_SUMMARY_LENGTH,
}


def _with_text(row: TermsRow, text: TermsText) -> TermsRow:
    """`row` with the given text fields (None: unchanged), each within its limit; the name is never blank."""
    changes: dict[str, Any] = {}
    for name, limit in _LIMITS.items():
        value = getattr(text, name)
        if value is None:
            continue
        if len(value) > limit:
            raise InvalidInput(f"{_graph_name(name)} is longer than {limit} characters")
        changes[name] = value
    if "display_name" in changes and not changes["display_name"].strip():
        raise InvalidInput("displayName is required")
    return replace(row, **changes)


def _graph_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def assigned_to(rows: Iterable[TermsRow], group_ids: frozenset[str]) -> list[TermsRow]:
    """The policies among `rows` assigned to a user in `group_ids` (or to all users)."""
    return [
        row
        for row in rows
        if match(row.targets, has_user=True, group_ids=group_ids, filter_matches=_no_filters).applies
    ]
