"""Apple enrollment type profiles (Graph `appleUserInitiatedEnrollmentProfiles`): CRUD, assignment, priorities,
and the offer a user gets (`offer_for`, for the enrollment portal; `offer_for_upn`, the admins' what-if).

An admin reaches only the profiles within its scope for the permission at hand; others are "not found". The
offer ignores scopes: it is what the user gets, whoever asks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from muster.domain.assignments import AssignmentTarget
from muster.domain.clock import Clock
from muster.domain.enrollment_type_profiles import (
    DEVICE_GROUPS_REFUSED,
    EnrollmentOffer,
    EnrollmentTypeProfile,
    ProfileCandidate,
    parse_profile,
    parse_profile_targets,
    resolve,
)
from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Scope
from muster.services.audit import AuditSink


@dataclass(frozen=True)
class ProfileRow:
    id: str
    org_id: str
    profile: EnrollmentTypeProfile
    priority: int
    targets: tuple[AssignmentTarget, ...]
    scope_tag_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    def candidate(self) -> ProfileCandidate:
        return ProfileCandidate(self.id, self.profile.display_name, self.priority, self.profile.setting, self.targets)


class EnrollmentTypeProfileStore(Protocol):
    async def all(self, org_id: str, scope: Scope) -> list[ProfileRow]:
        """Priority order."""

    async def get(self, org_id: str, profile_id: str) -> ProfileRow | None: ...

    async def add(self, row: ProfileRow) -> ProfileRow:
        """Insert it last (`insertion_priority`), atomically; the stored row."""

    async def update(self, row: ProfileRow) -> None:
        """Everything but the priority."""

    async def delete(self, row: ProfileRow) -> None:
        """Remove it and close the gap in the priorities, atomically."""

    async def set_priority(self, row: ProfileRow, priority: int) -> None:
        """Move it (`reordered`), atomically, whatever other admins do at the same time."""

    async def unknown_groups(self, org_id: str, group_ids: Iterable[str]) -> set[str]: ...

    async def groups_holding_devices(self, org_id: str, group_ids: Iterable[str]) -> set[str]:
        """Those of the groups with a device among their members (nested groups included), or whose dynamic
        membership rule is about devices."""

    async def user_and_groups(self, org_id: str, upn: str) -> tuple[str, frozenset[str]] | None:
        """The user's id and every group it is in, nested groups included; None for no such user."""


class EnrollmentTypeProfiles:
    def __init__(self, *, store: EnrollmentTypeProfileStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def all(self, org_id: str, scope: Scope) -> list[ProfileRow]:
        return await self._store.all(org_id, scope)

    async def get(self, org_id: str, profile_id: str, scope: Scope) -> ProfileRow:
        """The profile; one outside `scope` is "not found", so an admin learns nothing of it."""
        row = await self._store.get(org_id, profile_id)
        if row is None or not scope.covers(row.scope_tag_ids):
            raise NotFound(f"enrollment type profile {profile_id} not found")
        return row

    async def visible(self, org_id: str, profile_id: str, scope: Scope) -> bool:
        row = await self._store.get(org_id, profile_id)
        return row is not None and scope.covers(row.scope_tag_ids)

    async def create(self, *, org_id: str, actor: str, body: Mapping[str, Any], tag_ids: tuple[str, ...]) -> ProfileRow:
        """A new profile, last in priority and assigned to nobody yet (so without effect)."""
        now = self._clock.now()
        row = ProfileRow(str(uuid.uuid4()), org_id, parse_profile(body), 0, (), tag_ids, now, now)
        stored = await self._store.add(row)
        await self._audited(actor, "createAppleUserInitiatedEnrollmentProfile", stored, {"after": _summary(stored)})
        return stored

    async def update(
        self,
        org_id: str,
        profile_id: str,
        scope: Scope,
        *,
        actor: str,
        body: Mapping[str, Any],
        tag_ids: tuple[str, ...] | None,
    ) -> ProfileRow:
        """PATCH: the properties given change (new enrollments only)."""
        row = await self.get(org_id, profile_id, scope)
        updated = replace(
            row,
            profile=parse_profile(body, row.profile, priority=row.priority),
            scope_tag_ids=row.scope_tag_ids if tag_ids is None else tag_ids,
            updated_at=self._clock.now(),
        )
        await self._store.update(updated)
        detail = {"before": _summary(row), "after": _summary(updated)}
        await self._audited(actor, "updateAppleUserInitiatedEnrollmentProfile", row, detail)
        return updated

    async def delete(self, org_id: str, profile_id: str, scope: Scope, *, actor: str) -> None:
        row = await self.get(org_id, profile_id, scope)
        await self._store.delete(row)
        await self._audited(actor, "deleteAppleUserInitiatedEnrollmentProfile", row, {"before": _summary(row)})

    async def set_priority(
        self, org_id: str, profile_id: str, scope: Scope, *, actor: str, priority: int
    ) -> ProfileRow:
        """Move the profile to `priority` (1 is the highest); the others keep their order (003:5513-5519)."""
        row = await self.get(org_id, profile_id, scope)
        await self._store.set_priority(row, priority)
        moved = await self.get(org_id, profile_id, scope)
        detail = {"before": {"priority": row.priority}, "after": {"priority": moved.priority}}
        await self._audited(actor, "setPriorityAppleUserInitiatedEnrollmentProfile", row, detail)
        return moved

    async def assign(self, org_id: str, profile_id: str, scope: Scope, *, actor: str, assignments: Any) -> ProfileRow:
        """Replace the assignments: existing user groups (to include or exclude) or all users (003:5474-5489)."""
        row = await self.get(org_id, profile_id, scope)
        targets = parse_profile_targets(assignments)
        group_ids = {target.group_id for target in targets if target.group_id}
        missing = await self._store.unknown_groups(org_id, group_ids)
        if missing:
            raise InvalidInput(f"no such group: {', '.join(sorted(missing))}")
        with_devices = await self._store.groups_holding_devices(org_id, group_ids)
        if with_devices:
            raise InvalidInput(f"{DEVICE_GROUPS_REFUSED} (group {', '.join(sorted(with_devices))} holds devices)")
        updated = replace(row, targets=targets, updated_at=self._clock.now())
        await self._store.update(updated)
        detail = {"targets": [target.to_graph() for target in targets]}
        await self._audited(actor, "assignAppleUserInitiatedEnrollmentProfile", row, detail)
        return updated

    async def offer_for(self, org_id: str, user_id: str | None, group_ids: frozenset[str]) -> EnrollmentOffer:
        """What the enrolling user (None: a userless enrollment) in `group_ids` (nested groups included) is
        offered: the highest-priority profile assigned to them, or none (device enrollment), R-211."""
        profiles = await self._store.all(org_id, Scope(everything=True))
        return resolve((row.candidate() for row in profiles), has_user=user_id is not None, group_ids=group_ids)

    async def offer_for_upn(self, org_id: str, upn: str) -> tuple[str, EnrollmentOffer]:
        """The user's id and `offer_for` that user (the admins' what-if)."""
        found = await self._store.user_and_groups(org_id, upn)
        if found is None:
            raise NotFound(f"user {upn} not found")
        user_id, group_ids = found
        return user_id, await self.offer_for(org_id, user_id, group_ids)

    async def _audited(self, actor: str, activity: str, row: ProfileRow, detail: Mapping[str, Any]) -> None:
        await self._audit.admin_event(actor=actor, activity=activity, target=row.id, detail=detail)


def _summary(row: ProfileRow) -> dict[str, Any]:
    return {
        "displayName": row.profile.display_name,
        "priority": row.priority,
        **row.profile.setting.to_graph(),
        "roleScopeTagIds": list(row.scope_tag_ids),
    }
