"""SQL queries for the admin side of managed devices: Graph-style listing and the facts actions need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.devices import ManagementState
from muster.domain.enrollment_decision import Ownership
from muster.domain.rbac import Scope, TaggedObject
from muster.protocols.odata import QueryOptions
from muster.services.devices import ActionTarget
from muster.store.directory import groups_of_members
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.rbac import SqlRbacStore
from muster.store.scope_tags import scope_clause
from muster.store.tables import command_deliveries, commands, devices, enrollments, users
from muster.store.tables_terms import device_categories

d = devices.c

# Graph `managedDevice` property -> column, for $filter, $orderby and $select.
DEVICE_FIELDS: dict[str, Field] = {
    "id": Field(d.id, str),
    "deviceName": Field(d.device_name, str),
    "operatingSystem": Field(d.operating_system, str),
    "osVersion": Field(d.os_version, str),
    "model": Field(d.model_name, str),
    "serialNumber": Field(d.serial_number, str),
    "udid": Field(d.udid, str),
    "imei": Field(d.imei, str),
    "meid": Field(d.meid, str),
    "wiFiMacAddress": Field(d.wifi_mac, str),
    "phoneNumber": Field(d.phone_number, str),
    "isSupervised": Field(d.is_supervised, bool),
    "isEncrypted": Field(d.is_encrypted, bool),
    "totalStorageSpaceInBytes": Field(d.total_storage_bytes, int),
    "freeStorageSpaceInBytes": Field(d.free_storage_bytes, int),
    "managedDeviceOwnerType": Field(d.owner_type, str),
    "deviceEnrollmentType": Field(d.enrollment_type, str),
    "managementState": Field(d.management_state, str),
    "userPrincipalName": Field(d.user_principal_name, str),
    "enrolledDateTime": Field(d.enrolled_at, datetime),
    "lastSyncDateTime": Field(d.last_sync_at, datetime),
    "deviceCategoryDisplayName": Field(device_categories.c.display_name, str),
}

_COLUMNS = [
    d.id,
    d.org_id,
    d.udid,
    d.serial_number,
    d.device_name,
    d.operating_system,
    d.os_version,
    d.build_version,
    d.model,
    d.model_name,
    d.product_name,
    d.imei,
    d.meid,
    d.wifi_mac,
    d.phone_number,
    d.is_supervised,
    d.is_encrypted,
    d.total_storage_bytes,
    d.free_storage_bytes,
    d.owner_type,
    d.enrollment_type,
    d.management_state,
    d.user_principal_name,
    d.enrolled_at,
    d.last_sync_at,
    d.unenrolled_at,
    device_categories.c.display_name.label("device_category_display_name"),
]
# Devices with their category's name (CAT-04); a device without one is "Unassigned" (CAT-05).
_WITH_CATEGORY = devices.outerjoin(device_categories, device_categories.c.id == d.device_category_id)


class SqlDeviceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._tags = SqlRbacStore(engine)

    async def page(
        self, org_id: str, options: QueryOptions, scope: Scope
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """One page of the devices within `scope`, the skiptoken of the next page (or None), and the total when
        $count asks."""
        base = (
            select(*_COLUMNS)
            .select_from(_WITH_CATEGORY)
            .where(d.org_id == org_id, scope_clause(d.scope_tag_ids, scope))
        )
        async with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in await conn.execute(page_query(base, fields=DEVICE_FIELDS, options=options, id_column=d.id))
            ]
            total = None
            if options.count:
                total = (await conn.execute(count_query(base, DEVICE_FIELDS, options))).scalar_one()
        page, token = split_page(rows, options=options, fields=DEVICE_FIELDS, id_key="id")
        return list(page), token, total

    async def get(self, org_id: str, device_id: str) -> dict[str, Any] | None:
        query = select(*_COLUMNS, d.inventory).select_from(_WITH_CATEGORY).where(d.org_id == org_id, d.id == device_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row else None

    async def command_history(self, org_id: str, device_id: str, limit: int = 200) -> list[dict[str, Any]]:
        c, q, e = commands.c, command_deliveries.c, enrollments.c
        query = (
            select(
                c.uuid,
                c.request_type,
                c.action,
                c.created_by,
                c.created_at,
                q.status,
                q.sent_at,
                q.completed_at,
                q.error_chain,
                e.id.label("enrollment_id"),
            )
            .select_from(
                command_deliveries.join(commands, c.uuid == q.command_uuid).join(enrollments, e.id == q.enrollment_id)
            )
            .where(e.device_id == device_id, c.org_id == org_id)
            .order_by(q.queued_seq.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def action_targets(self, org_id: str, device_ids: Sequence[str]) -> list[ActionTarget]:
        e = enrollments.c
        found: list[ActionTarget] = []
        async with self._engine.connect() as conn:
            for start in range(0, len(device_ids), 5000):
                query = (
                    select(
                        d.id,
                        d.org_id,
                        d.management_state,
                        d.operating_system,
                        d.is_supervised,
                        d.owner_type,
                        d.inventory[("deviceInformation", "is_multi_user")].as_boolean().label("is_multi_user"),
                        e.id.label("enrollment_id"),
                        e.kind,
                        e.unlock_token_encrypted,
                    )
                    .select_from(devices.outerjoin(enrollments, and_(e.device_id == d.id, e.parent_id.is_(None))))
                    .where(d.org_id == org_id, d.id.in_(device_ids[start : start + 5000]))
                )
                found += [
                    ActionTarget(
                        r.id,
                        r.org_id,
                        r.enrollment_id,
                        r.kind,
                        ManagementState(r.management_state),
                        r.operating_system,
                        r.is_supervised,
                        r.unlock_token_encrypted,
                        r.is_multi_user,
                        r.owner_type == "personal",
                    )
                    for r in await conn.execute(query)
                ]
        return found

    async def tags_of(self, device_ids: Sequence[str]) -> dict[str, list[str]]:
        return await self._tags.tags_of(TaggedObject.MANAGED_DEVICE, device_ids)

    async def scope_group_memberships(self, org_id: str, device_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        u = users.c
        # lower() on both sides, by the database, as the directory compares UPNs
        same_upn = and_(u.org_id == d.org_id, func.lower(u.user_principal_name) == func.lower(d.user_principal_name))
        primary_users: dict[str, set[str]] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(device_ids), 5000):
                query = (
                    select(d.id, u.id.label("user_id"))
                    .select_from(devices.outerjoin(users, same_upn))
                    .where(d.org_id == org_id, d.id.in_(device_ids[start : start + 5000]))
                )
                for row in await conn.execute(query):
                    primary_users.setdefault(row.id, set()).update([row.user_id] if row.user_id else [])
            user_ids = sorted(set().union(*primary_users.values()))
            groups = await groups_of_members(conn, org_id, [*primary_users, *user_ids])
        return {
            device_id: groups[device_id].union(*(groups[user_id] for user_id in found))
            for device_id, found in primary_users.items()
        }

    async def set_states(self, device_ids: Sequence[str], state: ManagementState, now: datetime) -> None:
        async with self._engine.begin() as conn:
            for start in range(0, len(device_ids), 5000):
                await conn.execute(
                    update(devices)
                    .where(d.id.in_(device_ids[start : start + 5000]))
                    .values(management_state=state.value)
                )

    async def set_ownership(self, org_id: str, device_id: str, owner: Ownership) -> str | None:
        async with self._engine.begin() as conn:
            query = select(d.owner_type, d.inventory).where(d.org_id == org_id, d.id == device_id).with_for_update()
            found = (await conn.execute(query)).first()
            if found is None:
                return None
            values: dict[str, Any] = {"owner_type": owner.value}
            if owner is Ownership.PERSONAL and found.owner_type != owner.value:
                inventory = {key: value for key, value in found.inventory.items() if key != "installedApps"}
                information = inventory.get("deviceInformation")
                if isinstance(information, dict):
                    inventory["deviceInformation"] = {k: v for k, v in information.items() if k != "phone_number"}
                values |= {"phone_number": None, "inventory": inventory}
            await conn.execute(update(devices).where(d.id == device_id).values(values))
        return str(found.owner_type)

    async def count(self, org_id: str) -> int:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(select(func.count()).select_from(devices).where(d.org_id == org_id))
            ).scalar_one()
