"""Priority lists kept as the permutation 1..N: read in order, then rewrite only the priorities that moved.

Callers serialise changes to one list first (each store says how it locks), so that the order read here is the
committed one. Enrollment restrictions and enrollment type profiles use it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def ordered_ids(conn: AsyncConnection, table: Table, where: Any) -> list[str]:
    """The ids of the list's rows (`where`), priority 1 first; ties (none once renumbered) by age, then id."""
    c = table.c
    query = select(c.id).where(where).order_by(c.priority, c.created_at, c.id)
    return list((await conn.execute(query)).scalars())


async def renumber(conn: AsyncConnection, table: Table, before: list[str], after: list[str]) -> None:
    """Write priorities 1..N of `after`, touching only the rows whose priority changed from `before`."""
    old = {row_id: index for index, row_id in enumerate(before, 1)}
    for priority, row_id in enumerate(after, 1):
        if old.get(row_id) != priority:
            await conn.execute(update(table).where(table.c.id == row_id).values(priority=priority))
