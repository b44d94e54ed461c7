"""Assignment filters (Graph `deviceAndAppManagementAssignmentFilter`): CRUD, rule checks and a preview.

A filter is made for one platform, which cannot change afterwards (as in Intune). Its rule is checked against the
platform's full managed-device property set when saved; a policy that uses it at enrollment parses it again with
the smaller enrollment set (seed-catalog-C §1.13, 003:7201-7223), so a filter saved here may still be refused
there. Names are unique per organisation, ignoring case. Admins reach only the filters within their scope tags:
others answer 404, so that their existence does not leak.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from muster.domain.assignment_filters import FilterPlatform, FilterRule, FilterUsage, parse_filter
from muster.domain.clock import Clock
from muster.domain.errors import Conflict, InvalidInput, NotFound
from muster.domain.rbac import Scope
from muster.services.audit import AuditSink

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 1500


@dataclass(frozen=True)
class AssignmentFilterRow:
    id: str
    org_id: str
    display_name: str
    description: str | None
    platform: FilterPlatform
    rule: str
    scope_tag_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    def parsed(self, usage: FilterUsage) -> FilterRule:
        """The rule, checked for `usage` (InvalidInput when that use cannot take it)."""
        return parse_filter(self.rule, platform=self.platform, usage=usage)


@dataclass(frozen=True)
class FilterChange:
    """What an admin asks for; None leaves a property as it is (all but the description are needed to create)."""

    display_name: str | None = None
    description: str | None = None
    platform: str | None = None
    rule: str | None = None
    scope_tag_ids: tuple[str, ...] | None = None


class AssignmentFilterStore(Protocol):
    async def add(self, row: AssignmentFilterRow, name_key: str) -> bool:
        """False when the organisation already has a filter of that name key."""

    async def save(self, row: AssignmentFilterRow, name_key: str) -> bool:
        """False when another filter of the organisation has that name key."""

    async def all(self, org_id: str, scope: Scope) -> list[AssignmentFilterRow]: ...

    async def get(self, org_id: str, filter_id: str) -> AssignmentFilterRow | None: ...

    async def get_many(self, org_id: str, filter_ids: Sequence[str]) -> list[AssignmentFilterRow]: ...

    async def delete(self, org_id: str, filter_id: str) -> None: ...


class FilterUsers(Protocol):
    async def using_filter(self, org_id: str, filter_id: str) -> list[str]:
        """The names of the policies whose assignments use the filter."""
        ...


def name_key(display_name: str) -> str:
    return display_name.strip().casefold()


def platform_of(value: str) -> FilterPlatform:
    try:
        return FilterPlatform(value)
    except ValueError:
        allowed = ", ".join(platform.value for platform in FilterPlatform)
        raise InvalidInput(f"platform must be one of {allowed}") from None


def _checked_name(display_name: str) -> str:
    name = display_name.strip()
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InvalidInput(f"displayName must have 1 to {MAX_NAME_LENGTH} characters")
    return name


def _checked_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return description


class AssignmentFilters:
    def __init__(self, *, store: AssignmentFilterStore, users: FilterUsers, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._users = users
        self._audit = audit
        self._clock = clock

    async def create(self, *, org_id: str, actor: str, change: FilterChange) -> AssignmentFilterRow:
        if change.display_name is None or change.platform is None or change.rule is None:
            raise InvalidInput("displayName, platform and rule are required")
        platform = platform_of(change.platform)
        parse_filter(change.rule, platform=platform, usage=FilterUsage.MANAGED_DEVICE)
        now = self._clock.now()
        row = AssignmentFilterRow(
            id=str(uuid.uuid4()),
            org_id=org_id,
            display_name=_checked_name(change.display_name),
            description=_checked_description(change.description),
            platform=platform,
            rule=change.rule,
            scope_tag_ids=change.scope_tag_ids or ("0",),
            created_at=now,
            updated_at=now,
        )
        if not await self._store.add(row, name_key(row.display_name)):
            raise Conflict(f"an assignment filter named {row.display_name!r} already exists")
        await self._audit.admin_event(
            actor=actor,
            activity="createAssignmentFilter",
            target=row.id,
            detail={"displayName": row.display_name, "platform": platform.value, "rule": row.rule},
        )
        return row

    async def all(self, org_id: str, scope: Scope) -> list[AssignmentFilterRow]:
        return await self._store.all(org_id, scope)

    async def get(self, org_id: str, filter_id: str, scope: Scope) -> AssignmentFilterRow:
        found = await self._store.get(org_id, filter_id)
        if found is None or not scope.covers(found.scope_tag_ids):
            raise NotFound(f"assignment filter {filter_id} not found")
        return found

    async def update(
        self, *, org_id: str, filter_id: str, scope: Scope, actor: str, change: FilterChange
    ) -> AssignmentFilterRow:
        row = await self.get(org_id, filter_id, scope)
        if change.platform is not None and platform_of(change.platform) is not row.platform:
            raise InvalidInput("the platform of an assignment filter cannot change; create another filter")
        if change.rule is not None:
            parse_filter(change.rule, platform=row.platform, usage=FilterUsage.MANAGED_DEVICE)
        updated = replace(
            row,
            display_name=row.display_name if change.display_name is None else _checked_name(change.display_name),
            description=row.description if change.description is None else _checked_description(change.description),
            rule=change.rule or row.rule,
            scope_tag_ids=change.scope_tag_ids or row.scope_tag_ids,
            updated_at=self._clock.now(),
        )
        if not await self._store.save(updated, name_key(updated.display_name)):
            raise Conflict(f"an assignment filter named {updated.display_name!r} already exists")
        await self._audit.admin_event(
            actor=actor,
            activity="updateAssignmentFilter",
            target=row.id,
            detail={"before": {"rule": row.rule}, "after": {"rule": updated.rule}},
        )
        return updated

    async def delete(self, *, org_id: str, filter_id: str, scope: Scope, actor: str) -> None:
        """Refused while a policy's assignment uses the filter, as in Intune: the policy would silently change."""
        row = await self.get(org_id, filter_id, scope)
        users = await self._users.using_filter(org_id, filter_id)
        if users:
            raise Conflict(f"the filter is used by {', '.join(sorted(users))}: remove it from their assignments first")
        await self._store.delete(org_id, filter_id)
        await self._audit.admin_event(
            actor=actor, activity="deleteAssignmentFilter", target=row.id, detail={"displayName": row.display_name}
        )

    async def evaluate(self, *, org_id: str, filter_id: str, scope: Scope, device: Mapping[str, str | None]) -> bool:
        """Whether a device with these properties is in the filter (as managed-device policies read it)."""
        row = await self.get(org_id, filter_id, scope)
        return row.parsed(FilterUsage.MANAGED_DEVICE).matches(device)
