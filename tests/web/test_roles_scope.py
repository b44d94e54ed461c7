"""The scope filter in SQL (`scope_clause`, `in_scope`) agrees with the rule (`Scope.covers`) on random data, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid

from sqlalchemy import insert, select

from muster.domain.rbac import Scope, TaggedObject
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.rbac import SqlRbacStore, scope_clause
from muster.store.tables_rbac import scope_tag_links

TAGS = ["0", "a", "b", "c", "d", "e"]


async def test_sql_scope_filter_matches_the_rule(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    rng = random.Random(20261123)
    objects = {str(uuid.uuid4()): set(rng.sample(TAGS, rng.randint(1, 3))) for _ in range(300)}
    other = str(uuid.uuid4())  # the same tags on another kind of object must not leak into device scopes
    try:
        async with engine.begin() as conn:
            rows = [
                {"object_type": TaggedObject.MANAGED_DEVICE.value, "object_id": object_id, "tag_id": tag}
                for object_id, tags in objects.items()
                for tag in tags
            ]
            rows += [{"object_type": TaggedObject.DEP_TOKEN.value, "object_id": other, "tag_id": t} for t in TAGS]
            await conn.execute(insert(scope_tag_links), rows)
        store = SqlRbacStore(engine)
        ids = [*sorted(objects), other]
        scopes = [Scope(everything=True), Scope()] + [
            Scope(tag_ids=frozenset(rng.sample(TAGS, rng.randint(1, 4)))) for _ in range(40)
        ]
        for scope in scopes:
            expected = {object_id for object_id, tags in objects.items() if scope.covers(tags)}
            assert await store.in_scope(TaggedObject.MANAGED_DEVICE, ids, scope) == expected
            listed = scope_tag_links.alias("listed").c  # stands for the table of the objects being listed
            query = (
                select(listed.object_id)
                .where(listed.object_type == TaggedObject.MANAGED_DEVICE.value)
                .where(scope_clause(TaggedObject.MANAGED_DEVICE, listed.object_id, scope))
                .distinct()
            )
            async with engine.connect() as conn:
                assert set((await conn.execute(query)).scalars()) == expected, scope
    finally:
        await engine.dispose()
