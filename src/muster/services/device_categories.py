"""Device categories (seed-catalog-A §2.7 CAT-01..11): CRUD, a device's category, and what a rename touches.

A device carries at most one category (`devices.device_category_id`); deleting a category leaves its devices
"Unassigned" (CAT-05). The category's name is what dynamic group rules read as `device.deviceCategory` (CAT-03),
so renaming answers with the dynamic groups whose membership the rename changes (CAT-06): Muster does not
rewrite rules admins wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.device_categories import MAX_DESCRIPTION_LENGTH, checked_name, name_key, rename_changes_rule
from muster.domain.errors import Conflict, InvalidInput, NotFound
from muster.domain.membership_rules import parse_rule
from muster.domain.rbac import Scope

MAX_DEVICES_TO_CHOOSE = 10  # per page: a user has few devices (Intune's default device limit is 5)


@dataclass(frozen=True)
class CategoryRow:
    id: str
    org_id: str
    display_name: str
    description: str | None
    scope_tag_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CategoryChange:
    display_name: str | None = None
    description: str | None = None
    scope_tag_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DeviceOfCategory:
    """What choosing a device's category needs to know about the device."""

    id: str
    category_id: str | None
    user_principal_name: str | None


@dataclass(frozen=True)
class UserDevice:
    """A managed device of a user, as the enrollment portal names it."""

    id: str
    device_name: str | None
    model_name: str | None
    serial_number: str | None


@dataclass(frozen=True)
class DynamicGroupRule:
    group_id: str
    display_name: str
    membership_rule: str


class DeviceCategoryStore(Protocol):
    async def add(self, row: CategoryRow, key: str) -> bool:
        """False when the organisation already has a category of that name key."""

    async def all(self, org_id: str, scope: Scope) -> list[CategoryRow]: ...

    async def get(self, org_id: str, category_id: str) -> CategoryRow | None: ...

    async def update(self, row: CategoryRow, key: str) -> bool:
        """False when another category of the organisation has that name key."""

    async def delete(self, org_id: str, category_id: str) -> int:
        """Delete the category and unassign its devices in one transaction; how many devices it had."""

    async def device(self, org_id: str, device_id: str) -> DeviceOfCategory | None: ...

    async def set_device_category(self, org_id: str, device_id: str, category_id: str | None) -> None: ...

    async def uncategorized_devices(self, org_id: str, user_principal_name: str, limit: int) -> list[UserDevice]:
        """The user's managed devices that have no category yet."""

    async def dynamic_device_rules(self, org_id: str) -> list[DynamicGroupRule]:
        """The membership rules of the organisation's dynamic groups that read `device.deviceCategory`."""


class DeviceCategories:
    def __init__(self, *, store: DeviceCategoryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self, *, org_id: str, display_name: str, description: str | None, tag_ids: Sequence[str]
    ) -> CategoryRow:
        """CAT-02: a name (required, unique per organisation), a description and scope tags."""
        now = self._clock.now()
        name = checked_name(display_name)
        row = CategoryRow(str(uuid.uuid4()), org_id, name, _description(description), tuple(tag_ids), now, now)
        if not await self._store.add(row, name_key(name)):
            raise Conflict(f"a device category named {name!r} exists already")
        return row

    async def all(self, org_id: str, scope: Scope) -> list[CategoryRow]:
        return await self._store.all(org_id, scope)

    async def get(self, org_id: str, category_id: str, scope: Scope) -> CategoryRow:
        """The category; one outside `scope` is "not found", so an admin learns nothing of it."""
        row = await self._store.get(org_id, category_id)
        if row is None or not scope.covers(row.scope_tag_ids):
            raise NotFound(f"device category {category_id} not found")
        return row

    async def update(
        self, org_id: str, category_id: str, change: CategoryChange, scope: Scope
    ) -> tuple[CategoryRow, list[DynamicGroupRule]]:
        """The updated category, and the dynamic groups whose membership its new name changes (CAT-06)."""
        row = await self.get(org_id, category_id, scope)
        updated = replace(
            row,
            display_name=row.display_name if change.display_name is None else checked_name(change.display_name),
            description=row.description if change.description is None else _description(change.description),
            scope_tag_ids=row.scope_tag_ids if change.scope_tag_ids is None else change.scope_tag_ids,
            updated_at=self._clock.now(),
        )
        if not await self._store.update(updated, name_key(updated.display_name)):
            raise Conflict(f"a device category named {updated.display_name!r} exists already")
        affected = []
        if updated.display_name != row.display_name:
            affected = [
                group
                for group in await self._store.dynamic_device_rules(org_id)
                if rename_changes_rule(parse_rule(group.membership_rule), row.display_name, updated.display_name)
            ]
        return updated, affected

    async def delete(self, org_id: str, category_id: str, scope: Scope) -> int:
        """CAT-05: the category's devices become "Unassigned"; returns how many there were."""
        await self.get(org_id, category_id, scope)
        return await self._store.delete(org_id, category_id)

    async def of_device(self, org_id: str, device_id: str, scope: Scope) -> CategoryRow | None:
        """The device's category (None: "Unassigned"); the device's own scope was checked by the caller."""
        device = await self._device(org_id, device_id)
        return None if device.category_id is None else await self.get(org_id, device.category_id, scope)

    async def set_for_device(self, org_id: str, device_id: str, category_id: str | None, scope: Scope) -> None:
        """CAT-07: an admin sets (or with None clears) a device's category, among the categories it can see."""
        await self._device(org_id, device_id)
        if category_id is not None:
            await self.get(org_id, category_id, scope)
        await self._store.set_device_category(org_id, device_id, category_id)

    async def choose(self, org_id: str, device_id: str, category_id: str, by_user: str) -> None:
        """CAT-09, CAT-11: a user picks the category of their own device (any category of the organisation:
        scope tags limit admins, not users)."""
        device = await self._device(org_id, device_id)
        if (device.user_principal_name or "").casefold() != by_user.casefold():
            raise NotFound(f"device {device_id} not found")  # not theirs: they learn nothing about it
        if await self._store.get(org_id, category_id) is None:
            raise InvalidInput("choose one of the offered device categories")
        await self._store.set_device_category(org_id, device_id, category_id)

    async def offered(self, org_id: str) -> list[CategoryRow]:
        """Every category, by name: what the enrollment page offers users (CAT-11)."""
        return sorted(await self._store.all(org_id, Scope(everything=True)), key=lambda c: name_key(c.display_name))

    async def to_choose(self, org_id: str, user_principal_name: str) -> tuple[list[UserDevice], list[CategoryRow]]:
        """CAT-09, CAT-10: the user's managed devices still without a category, and the categories to offer;
        nothing to choose while the organisation has no category."""
        offered = await self.offered(org_id)
        if not offered:
            return [], []
        return await self._store.uncategorized_devices(org_id, user_principal_name, MAX_DEVICES_TO_CHOOSE), offered

    async def _device(self, org_id: str, device_id: str) -> DeviceOfCategory:
        device = await self._store.device(org_id, device_id)
        if device is None:
            raise NotFound(f"managed device {device_id} not found")
        return device


def _description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return description
