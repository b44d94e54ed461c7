"""The scope filter in SQL (`scope_clause`, `in_scope`, `tags_of`) agrees with the rule (`Scope.covers`) on random
data, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

from sqlalchemy import insert, select

from muster.domain.rbac import Scope, TaggedObject
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.rbac import SqlRbacStore
from muster.store.scope_tags import scope_clause
from muster.store.tables import DEFAULT_ORG_ID, devices, organizations

TAGS = ["0", "a", "b", "c", "d", "e"]


async def test_sql_scope_filter_matches_the_rule(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    rng = random.Random(20261123)
    objects = {str(uuid.uuid4()): sorted(rng.sample(TAGS, rng.randint(1, 3))) for _ in range(300)}
    other = str(uuid.uuid4())  # an id of no device: never in scope, whatever the tags
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(organizations).values(id=DEFAULT_ORG_ID, name="Org", created_at=datetime.now(UTC))
            )
            rows = [
                {
                    "id": object_id,
                    "org_id": DEFAULT_ORG_ID,
                    "owner_type": "personal",
                    "enrollment_type": "profileEnrollment",
                    "management_state": "managed",
                    "inventory": {},
                    "scope_tag_ids": tags,
                }
                for object_id, tags in objects.items()
            ]
            await conn.execute(insert(devices), rows)
        store = SqlRbacStore(engine)
        ids = [*sorted(objects), other]
        assert await store.tags_of(TaggedObject.MANAGED_DEVICE, ids) == {**objects, other: []}
        scopes = [Scope(everything=True), Scope()] + [
            Scope(tag_ids=frozenset(rng.sample(TAGS, rng.randint(1, 4)))) for _ in range(40)
        ]
        for scope in scopes:
            expected = {object_id for object_id, tags in objects.items() if scope.covers(tags)}
            assert await store.in_scope(TaggedObject.MANAGED_DEVICE, ids, scope) == expected
            query = select(devices.c.id).where(scope_clause(devices.c.scope_tag_ids, scope))
            async with engine.connect() as conn:
                assert set((await conn.execute(query)).scalars()) == expected, scope
        for tag in TAGS:
            expected_count = sum(tag in tags for tags in objects.values())
            assert await store.tagged_object_count(tag) == expected_count
    finally:
        await engine.dispose()
