"""SQL storage of the directory: users, groups and memberships (see `muster.services.directory`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.errors import Conflict
from muster.protocols.odata import QueryOptions
from muster.services.directory import DEVICE_RULE_PROPERTIES
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables import devices, group_members, groups, users
from muster.store.tables_directory import provisioning_tokens

u, g, m, d = users.c, groups.c, group_members.c, devices.c
USE_RECORDED_EVERY = timedelta(minutes=1)
MAX_NESTING = 32  # levels of nested groups followed by transitive queries
_CHUNK = 5000  # ids per IN (...) list

USER_FIELDS: dict[str, Field] = {
    "id": Field(u.id, str),
    "userPrincipalName": Field(u.user_principal_name, str),
    "displayName": Field(u.display_name, str),
    "givenName": Field(u.given_name, str),
    "surname": Field(u.surname, str),
    "mail": Field(u.mail, str),
    "accountEnabled": Field(u.account_enabled, bool),
    "department": Field(u.department, str),
    "jobTitle": Field(u.job_title, str),
    "createdDateTime": Field(u.created_at, datetime),
}
GROUP_FIELDS: dict[str, Field] = {
    "id": Field(g.id, str),
    "displayName": Field(g.display_name, str),
    "description": Field(g.description, str),
    "mailNickname": Field(g.mail_nickname, str),
    "membershipRule": Field(g.membership_rule, str),
    "createdDateTime": Field(g.created_at, datetime),
}
_TABLES: dict[str, tuple[Table, dict[str, Field]]] = {"users": (users, USER_FIELDS), "groups": (groups, GROUP_FIELDS)}
_DEVICE_COLUMNS = [column for column in devices.c if column.name != "inventory"]
# What dynamic rules read; a property whose column does not exist yet (device categories) reads as null.
_DEVICE_RULE_COLUMNS = [c for c in devices.c if c.name in {"id", "org_id", *DEVICE_RULE_PROPERTIES.values()}]


class SqlDirectoryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self, kind: str, org_id: str, options: QueryOptions
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        table, fields = _TABLES[kind]
        base = select(table).where(table.c.org_id == org_id)
        async with self._engine.connect() as conn:
            query = page_query(base, fields=fields, options=options, id_column=table.c.id)
            rows = [dict(r._mapping) for r in await conn.execute(query)]
            total = (await conn.execute(count_query(base, fields, options))).scalar_one() if options.count else None
        page, token = split_page(rows, options=options, fields=fields, id_key="id")
        return list(page), token, total

    async def get(self, kind: str, org_id: str, object_id: str) -> dict[str, Any] | None:
        table = _TABLES[kind][0]
        return await self._one(select(table).where(table.c.org_id == org_id, table.c.id == object_id))

    async def user_by_upn(self, org_id: str, upn: str) -> dict[str, Any] | None:
        # lower() on both sides, by the database: SQLite folds ASCII only, and Python's lower() would disagree
        query = select(users).where(u.org_id == org_id, func.lower(u.user_principal_name) == func.lower(upn))
        return await self._one(query)

    async def group_by_name(self, org_id: str, display_name: str) -> dict[str, Any] | None:
        query = (
            select(groups)
            .where(g.org_id == org_id, func.lower(g.display_name) == func.lower(display_name))
            .order_by(g.created_at, g.id)
            .limit(1)
        )
        return await self._one(query)

    async def save_user(self, row: Mapping[str, Any], *, dynamic_groups: Mapping[str, bool]) -> None:
        async with self._engine.begin() as conn:
            await _upsert(conn, users, row)
            await _set_dynamic(conn, row["id"], dynamic_groups)

    async def import_users(
        self, saved: Sequence[tuple[Mapping[str, Any], Mapping[str, bool]]], memberships: Sequence[tuple[str, str]]
    ) -> int:
        added = 0
        async with self._engine.begin() as conn:
            for row, dynamic_groups in saved:
                await _upsert(conn, users, row)
                await _set_dynamic(conn, row["id"], dynamic_groups)
            for group_id, user_id in dict.fromkeys(memberships):
                present = select(m.member_id).where(m.group_id == group_id, m.member_id == user_id)
                if (await conn.execute(present)).first() is None:
                    values = {"group_id": group_id, "member_id": user_id, "member_type": "user"}
                    await conn.execute(insert(group_members).values(values))
                    added += 1
        return added

    async def save_group(self, row: Mapping[str, Any], *, members: Iterable[tuple[str, str]] | None) -> None:
        async with self._engine.begin() as conn:
            await _upsert(conn, groups, row)
            if members is not None:
                await conn.execute(delete(group_members).where(m.group_id == row["id"]))
                values = [{"group_id": row["id"], "member_id": i, "member_type": t} for i, t in dict(members).items()]
                for start in range(0, len(values), 1000):
                    await conn.execute(insert(group_members), values[start : start + 1000])

    async def delete(self, kind: str, org_id: str, object_id: str) -> bool:
        table = _TABLES[kind][0]
        async with self._engine.begin() as conn:
            await conn.execute(delete(group_members).where(m.member_id == object_id))
            if kind == "groups":
                await conn.execute(delete(group_members).where(m.group_id == object_id))
            result = await conn.execute(delete(table).where(table.c.org_id == org_id, table.c.id == object_id))
        return bool(result.rowcount)

    async def add_member(self, group_id: str, member_id: str, member_type: str) -> bool:
        async with self._engine.begin() as conn:
            present = await conn.execute(
                select(m.member_id).where(m.group_id == group_id, m.member_id == member_id).with_for_update()
            )
            if present.first() is not None:
                return False
            await conn.execute(
                insert(group_members).values(group_id=group_id, member_id=member_id, member_type=member_type)
            )
        return True

    async def remove_member(self, group_id: str, member_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(group_members).where(m.group_id == group_id, m.member_id == member_id))
        return bool(result.rowcount)

    async def set_members(self, group_id: str, member_type: str, member_ids: Sequence[str]) -> None:
        wanted = set(member_ids)
        async with self._engine.begin() as conn:
            query = select(m.member_id).where(m.group_id == group_id, m.member_type == member_type)
            present = {r.member_id for r in await conn.execute(query)}
            gone = sorted(present - wanted)
            for start in range(0, len(gone), 1000):
                chunk = gone[start : start + 1000]
                await conn.execute(delete(group_members).where(m.group_id == group_id, m.member_id.in_(chunk)))
            new = [{"group_id": group_id, "member_id": i, "member_type": member_type} for i in sorted(wanted - present)]
            for start in range(0, len(new), 1000):
                await conn.execute(insert(group_members), new[start : start + 1000])

    async def members(self, org_id: str, group_ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with self._engine.connect() as conn:
            for kind, table, columns in (
                ("user", users, list(users.c)),
                ("group", groups, list(groups.c)),
                ("device", devices, _DEVICE_COLUMNS),
            ):
                member_ids = select(m.member_id).where(m.group_id.in_(group_ids), m.member_type == kind)
                query = (
                    select(*columns).where(table.c.id.in_(member_ids), table.c.org_id == org_id).order_by(table.c.id)
                )
                found += [{**r._mapping, "member_type": kind} for r in await conn.execute(query)]
        return found

    async def group_ids_of(self, org_id: str, member_id: str, *, transitive: bool) -> frozenset[str]:
        async with self._engine.connect() as conn:
            found = await groups_of_members(conn, org_id, [member_id], levels=MAX_NESTING if transitive else 1)
        return found[member_id]

    async def dynamic_groups(self, org_id: str | None) -> list[dict[str, Any]]:
        query = select(groups).where(g.membership_type == "dynamic").order_by(g.id)
        if org_id is not None:
            query = query.where(g.org_id == org_id)
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def candidates(self, kind: str, org_id: str) -> list[dict[str, Any]]:
        table, columns = {"user": (users, list(users.c)), "group": (groups, list(groups.c))}.get(
            kind, (devices, _DEVICE_RULE_COLUMNS)
        )
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(*columns).where(table.c.org_id == org_id))]

    async def object_type(self, org_id: str, object_id: str) -> str | None:
        async with self._engine.connect() as conn:
            for kind, table in (("user", users), ("group", groups), ("device", devices)):
                query = select(table.c.id).where(table.c.org_id == org_id, table.c.id == object_id)
                if (await conn.execute(query)).first() is not None:
                    return kind
        return None

    async def _one(self, query: Any) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row else None


async def groups_of_members(
    conn: AsyncConnection, org_id: str, member_ids: Sequence[str], *, levels: int = MAX_NESTING
) -> dict[str, frozenset[str]]:
    """Every group of the organisation each member (user, device or group) is in, directly or through up to
    `levels` of nested groups: one recursive query (per 5,000 members) for all the members together, so a user in
    hundreds of groups costs one round trip, not one per level with every group id sent back to the server."""
    found: dict[str, set[str]] = {member: set() for member in member_ids}
    ordered = sorted(found)
    parent, parent_group = group_members.alias("parent"), groups.alias("parent_group")
    for start in range(0, len(ordered), _CHUNK):
        direct = (
            select(m.member_id, m.group_id, literal_column("1").label("depth"))
            .select_from(group_members.join(groups, g.id == m.group_id))
            .where(m.member_id.in_(ordered[start : start + _CHUNK]), g.org_id == org_id)
            .cte("ancestors", recursive=True)
        )
        nested = (
            select(direct.c.member_id, parent.c.group_id, direct.c.depth + 1)
            .select_from(
                direct.join(parent, parent.c.member_id == direct.c.group_id).join(
                    parent_group, parent_group.c.id == parent.c.group_id
                )
            )
            .where(parent_group.c.org_id == org_id, direct.c.depth < levels)
        )
        ancestors = direct.union(nested)  # UNION, not UNION ALL: a nesting loop ends within `levels`
        for row in await conn.execute(select(ancestors.c.member_id, ancestors.c.group_id).distinct()):
            found[row.member_id].add(row.group_id)
    return {member: frozenset(found[member]) for member in member_ids}


async def _upsert(conn: AsyncConnection, table: Table, row: Mapping[str, Any]) -> None:
    values = {name: value for name, value in row.items() if name in table.c}
    try:
        result = await conn.execute(update(table).where(table.c.id == values["id"]).values(values))
        if not result.rowcount:
            await conn.execute(insert(table).values(values))
    except IntegrityError:  # the service checked uniqueness; a concurrent request won the race
        raise Conflict(f"{table.name}: another request saved the same unique value meanwhile; try again") from None


class SqlProvisioningTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(provisioning_tokens).values(row))

    async def list(self, org_id: str) -> list[dict[str, Any]]:
        t = provisioning_tokens.c
        query = (
            select(t.id, t.display_name, t.created_by, t.created_at, t.last_used_at)
            .where(t.org_id == org_id, t.revoked_at.is_(None))
            .order_by(t.created_at, t.id)
        )
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def revoke(self, org_id: str, token_id: str, now: datetime) -> bool:
        t = provisioning_tokens.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(provisioning_tokens)
                .where(t.org_id == org_id, t.id == token_id, t.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    async def org_of(self, secret_sha256: str, now: datetime) -> tuple[str, str] | None:
        t = provisioning_tokens.c
        async with self._engine.begin() as conn:
            query = select(t.id, t.org_id, t.display_name, t.last_used_at).where(
                t.secret_sha256 == secret_sha256, t.revoked_at.is_(None)
            )
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            if row.last_used_at is None or now - row.last_used_at > USE_RECORDED_EVERY:  # not a write per request
                await conn.execute(update(provisioning_tokens).where(t.id == row.id).values(last_used_at=now))
        return str(row.org_id), str(row.display_name)


async def _set_dynamic(conn: AsyncConnection, user_id: str, dynamic_groups: Mapping[str, bool]) -> None:
    """Make the user a member of exactly the dynamic groups marked True among these."""
    for group_id, member in dynamic_groups.items():
        await conn.execute(delete(group_members).where(m.group_id == group_id, m.member_id == user_id))
        if member:
            await conn.execute(insert(group_members).values(group_id=group_id, member_id=user_id, member_type="user"))
