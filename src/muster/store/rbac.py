"""SQL storage of role definitions, role assignments, scope tags and the tags of each scope-tagged object (kept on
the object's own row, see `muster.store.scope_tags`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.rbac import Scope, TaggedObject, object_tags
from muster.services.rbac_ports import RoleAssignmentRow, RoleDefinitionRow, ScopeTagRow
from muster.store.schema import metadata
from muster.store.scope_tags import carries_any_tag, scope_clause
from muster.store.tables import ade_devices, dep_tokens, group_members
from muster.store.tables_rbac import role_assignments, role_definitions, role_scope_tags

_r, _a, _s = role_definitions.c, role_assignments.c, role_scope_tags.c
_CHUNK = 5000
MAX_GROUP_DEPTH = 32


@cache
def tagged_table(kind: TaggedObject) -> Table:
    """The table of one kind of scope-tagged object (it names its kind in `info`, see `tagged_table_info`)."""
    for table in metadata.tables.values():
        if table.info.get("tagged_object") is kind:
            return table
    raise LookupError(f"no table holds {kind.value} objects")


async def inherited_device_tags(conn: AsyncConnection, ade_device_id: str | None) -> list[str]:
    """The tags a newly enrolled device starts with: its ADE token's when enrolled through one (as in Intune)."""
    if ade_device_id is None:
        return list(object_tags(()))
    d, t = ade_devices.c, dep_tokens.c
    query = select(t.scope_tag_ids).select_from(dep_tokens.join(ade_devices, d.token_id == t.id))
    tags = (await conn.execute(query.where(d.id == ade_device_id))).scalar_one_or_none()
    return sorted(tags) if tags else list(object_tags(()))


def _definition(row: Any) -> RoleDefinitionRow:
    return RoleDefinitionRow(**{**row._mapping, "permissions": tuple(row.permissions)})


def _assignment(row: Any) -> RoleAssignmentRow:
    values = dict(row._mapping)
    values["members"] = tuple(values["members"])
    values["scope_group_ids"] = tuple(values["scope_group_ids"])
    tags = values["scope_tag_ids"]
    values["scope_tag_ids"] = None if tags is None else tuple(tags)
    return RoleAssignmentRow(**values)


class SqlRbacStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def seed(self, org_id: str, roles: Sequence[RoleDefinitionRow], default_tag: ScopeTagRow) -> None:
        try:
            await self._seed(org_id, roles, default_tag)
        except IntegrityError:  # another server process seeded at the same moment: its rows are the same
            await self._seed(org_id, roles, default_tag)

    async def _seed(self, org_id: str, roles: Sequence[RoleDefinitionRow], default_tag: ScopeTagRow) -> None:
        async with self._engine.begin() as conn:
            present = set((await conn.execute(select(_r.id).where(_r.org_id == org_id, _r.is_built_in))).scalars())
            for role in roles:
                if role.id in present:
                    await conn.execute(
                        update(role_definitions).where(_r.id == role.id).values(permissions=list(role.permissions))
                    )
                else:
                    await conn.execute(insert(role_definitions).values(**_definition_values(role)))
            tag = await conn.execute(select(_s.id).where(_s.org_id == org_id, _s.id == default_tag.id))
            if tag.first() is None:
                await conn.execute(insert(role_scope_tags).values(**default_tag.__dict__))

    async def role_definitions(self, org_id: str) -> list[RoleDefinitionRow]:
        query = select(role_definitions).where(_r.org_id == org_id).order_by(_r.display_name, _r.id)
        async with self._engine.connect() as conn:
            return [_definition(row) for row in await conn.execute(query)]

    async def role_definition(self, org_id: str, role_id: str) -> RoleDefinitionRow | None:
        query = select(role_definitions).where(_r.org_id == org_id, _r.id == role_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _definition(row) if row else None

    async def save_role_definition(self, row: RoleDefinitionRow, *, new: bool) -> None:
        values = _definition_values(row)
        async with self._engine.begin() as conn:
            if new:
                await conn.execute(insert(role_definitions).values(**values))
            else:
                await conn.execute(update(role_definitions).where(_r.id == row.id).values(**values))

    async def delete_role_definition(self, role_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(role_definitions).where(_r.id == role_id))

    async def role_assignments(self, org_id: str) -> list[RoleAssignmentRow]:
        query = select(role_assignments).where(_a.org_id == org_id).order_by(_a.display_name, _a.id)
        async with self._engine.connect() as conn:
            return [_assignment(row) for row in await conn.execute(query)]

    async def role_assignment(self, org_id: str, assignment_id: str) -> RoleAssignmentRow | None:
        query = select(role_assignments).where(_a.org_id == org_id, _a.id == assignment_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _assignment(row) if row else None

    async def save_role_assignment(self, row: RoleAssignmentRow, *, new: bool) -> None:
        values = {
            **row.__dict__,
            "members": list(row.members),
            "scope_group_ids": list(row.scope_group_ids),
            "scope_tag_ids": None if row.scope_tag_ids is None else list(row.scope_tag_ids),
        }
        async with self._engine.begin() as conn:
            if new:
                await conn.execute(insert(role_assignments).values(**values))
            else:
                await conn.execute(update(role_assignments).where(_a.id == row.id).values(**values))

    async def delete_role_assignment(self, assignment_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(role_assignments).where(_a.id == assignment_id))

    async def scope_tags(self, org_id: str) -> list[ScopeTagRow]:
        query = select(role_scope_tags).where(_s.org_id == org_id).order_by(_s.display_name, _s.id)
        async with self._engine.connect() as conn:
            return [ScopeTagRow(**row._mapping) for row in await conn.execute(query)]

    async def scope_tag(self, org_id: str, tag_id: str) -> ScopeTagRow | None:
        query = select(role_scope_tags).where(_s.org_id == org_id, _s.id == tag_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return ScopeTagRow(**row._mapping) if row else None

    async def save_scope_tag(self, row: ScopeTagRow, *, new: bool) -> None:
        async with self._engine.begin() as conn:
            if new:
                await conn.execute(insert(role_scope_tags).values(**row.__dict__))
            else:
                await conn.execute(
                    update(role_scope_tags).where(_s.org_id == row.org_id, _s.id == row.id).values(**row.__dict__)
                )

    async def delete_scope_tag(self, org_id: str, tag_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(role_scope_tags).where(_s.org_id == org_id, _s.id == tag_id))

    async def tagged_object_count(self, tag_id: str) -> int:
        tables = [t for t in metadata.tables.values() if "tagged_object" in t.info]
        total = 0
        async with self._engine.connect() as conn:
            for table in tables:
                query = select(func.count()).select_from(table).where(carries_any_tag(table.c.scope_tag_ids, [tag_id]))
                total += (await conn.execute(query)).scalar_one()
        return total

    async def groups_of(self, member_id: str) -> set[str]:
        g = group_members.c
        found: set[str] = set()
        async with self._engine.connect() as conn:
            frontier = set((await conn.execute(select(g.group_id).where(g.member_id == member_id))).scalars())
            for _ in range(MAX_GROUP_DEPTH):
                frontier -= found
                if not frontier:
                    break
                found |= frontier
                query = select(g.group_id).where(g.member_type == "group", g.member_id.in_(sorted(frontier)))
                frontier = set((await conn.execute(query)).scalars())
        return found

    async def tags_of(self, object_type: TaggedObject, object_ids: Sequence[str]) -> dict[str, list[str]]:
        table = tagged_table(object_type)
        tags: dict[str, list[str]] = {object_id: [] for object_id in object_ids}
        async with self._engine.connect() as conn:
            for start in range(0, len(object_ids), _CHUNK):
                query = select(table.c.id, table.c.scope_tag_ids).where(
                    table.c.id.in_(object_ids[start : start + _CHUNK])
                )
                for row in await conn.execute(query):
                    tags[row.id] = sorted(row.scope_tag_ids)
        return tags

    async def in_scope(self, object_type: TaggedObject, object_ids: Sequence[str], scope: Scope) -> set[str]:
        table = tagged_table(object_type)
        found: set[str] = set()
        async with self._engine.connect() as conn:
            for start in range(0, len(object_ids), _CHUNK):
                chunk = object_ids[start : start + _CHUNK]
                query = select(table.c.id).where(table.c.id.in_(chunk), scope_clause(table.c.scope_tag_ids, scope))
                found |= set((await conn.execute(query)).scalars())
        return found

    async def replace_tags(self, object_type: TaggedObject, object_id: str, tag_ids: Sequence[str]) -> None:
        table = tagged_table(object_type)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(table).where(table.c.id == object_id).values(scope_tag_ids=list(object_tags(tag_ids)))
            )


def _definition_values(row: RoleDefinitionRow) -> dict[str, Any]:
    return {**row.__dict__, "permissions": list(row.permissions)}
