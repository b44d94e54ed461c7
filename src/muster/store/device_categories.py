"""SQL storage of device categories and of each device's category (`devices.device_category_id`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.device_categories import CATEGORY_PROPERTY
from muster.domain.devices import ManagementState
from muster.domain.rbac import Scope, object_tags
from muster.services.device_categories import CategoryRow, DeviceOfCategory, DynamicGroupRule, UserDevice
from muster.store.scope_tags import scope_clause
from muster.store.tables import devices, groups
from muster.store.tables_terms import device_categories

c = device_categories.c
_COLUMNS = [c.id, c.org_id, c.display_name, c.description, c.scope_tag_ids, c.created_at, c.updated_at]


def _row(found: Mapping[Any, Any]) -> CategoryRow:
    return CategoryRow(**{**found, "scope_tag_ids": tuple(found["scope_tag_ids"])})


def _values(row: CategoryRow, key: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "org_id": row.org_id,
        "display_name": row.display_name,
        "name_key": key,
        "description": row.description,
        "scope_tag_ids": list(object_tags(row.scope_tag_ids)),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class SqlDeviceCategoryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: CategoryRow, key: str) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(device_categories).values(**_values(row, key)))
        except IntegrityError:  # the (org, name) unique constraint
            return False
        return True

    async def all(self, org_id: str, scope: Scope) -> list[CategoryRow]:
        query = (
            select(*_COLUMNS).where(c.org_id == org_id, scope_clause(c.scope_tag_ids, scope)).order_by(c.name_key, c.id)
        )
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def get(self, org_id: str, category_id: str) -> CategoryRow | None:
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(*_COLUMNS).where(c.org_id == org_id, c.id == category_id))).first()
        return _row(found._mapping) if found else None

    async def update(self, row: CategoryRow, key: str) -> bool:
        values = _values(row, key)
        del values["id"], values["org_id"], values["created_at"]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(device_categories).where(c.org_id == row.org_id, c.id == row.id).values(**values)
                )
        except IntegrityError:
            return False
        return True

    async def delete(self, org_id: str, category_id: str) -> int:
        async with self._engine.begin() as conn:
            unassigned = await conn.execute(
                update(devices)
                .where(devices.c.org_id == org_id, devices.c.device_category_id == category_id)
                .values(device_category_id=None)
            )
            await conn.execute(delete(device_categories).where(c.org_id == org_id, c.id == category_id))
        return int(unassigned.rowcount)

    async def device(self, org_id: str, device_id: str) -> DeviceOfCategory | None:
        d = devices.c
        query = select(d.id, d.device_category_id, d.user_principal_name).where(d.org_id == org_id, d.id == device_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return DeviceOfCategory(found.id, found.device_category_id, found.user_principal_name) if found else None

    async def set_device_category(self, org_id: str, device_id: str, category_id: str | None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(devices)
                .where(devices.c.org_id == org_id, devices.c.id == device_id)
                .values(device_category_id=category_id)
            )

    async def uncategorized_devices(self, org_id: str, user_principal_name: str, limit: int) -> list[UserDevice]:
        d = devices.c
        query = (
            select(d.id, d.device_name, d.model_name, d.serial_number)
            .where(
                d.org_id == org_id,
                func.lower(d.user_principal_name) == user_principal_name.lower(),
                d.management_state == ManagementState.MANAGED.value,
                d.device_category_id.is_(None),
            )
            .order_by(d.enrolled_at, d.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [UserDevice(*row) for row in await conn.execute(query)]

    async def dynamic_device_rules(self, org_id: str) -> list[DynamicGroupRule]:
        g = groups.c
        query = (
            select(g.id, g.display_name, g.membership_rule)
            .where(
                g.org_id == org_id,
                g.membership_type == "dynamic",
                func.lower(g.membership_rule).contains(CATEGORY_PROPERTY),
            )
            .order_by(g.display_name, g.id)
        )
        async with self._engine.connect() as conn:
            return [
                DynamicGroupRule(row.id, row.display_name, row.membership_rule) for row in await conn.execute(query)
            ]

    async def names(self, org_id: str) -> dict[str, str]:
        """Each category's id and display name: what `device.deviceCategory` reads in dynamic group rules."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(c.id, c.display_name).where(c.org_id == org_id))
        return {row.id: row.display_name for row in rows}
