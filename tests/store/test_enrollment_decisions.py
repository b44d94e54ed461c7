"""The device-limit count in SQL agrees with R-202 as `counts_toward_limit` states it (003:7248-7255), on random
device records, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from muster.domain.devices import ManagementState
from muster.domain.enrollment_decision import CountedDevice, counts_toward_limit
from muster.domain.enrollment_methods import EnrollmentMethod
from muster.store.engine import create_engine
from muster.store.enrollment_decisions import MANAGED_STATES, SqlEnrollmentRecords
from muster.store.migrate import upgrade
from muster.store.tables import DEFAULT_ORG_ID, devices, enrollments, organizations

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
USER = "ada@example.com"
TYPES = ["userEnrollment", "appleBulkWithUser", EnrollmentMethod.WINDOWS_AUTOPILOT.value, "deviceEnrollmentManager"]
# Around the 90-day and 24-hour edges, where an off-by-one would show.
AGES = [timedelta(0), timedelta(hours=23, minutes=59), timedelta(hours=24, minutes=1), timedelta(days=89, hours=23),
        timedelta(days=90, minutes=1), timedelta(days=400)]  # fmt: skip


def _method(enrollment_type: str) -> EnrollmentMethod | None:
    try:
        return EnrollmentMethod(enrollment_type)
    except ValueError:
        return None


def _random_device(rng: random.Random) -> tuple[dict[str, object], dict[str, object] | None, CountedDevice]:
    """A device row, its device channel (None: none yet), and what R-202 sees of it."""
    device_id = str(uuid.uuid4())
    state = rng.choice(list(ManagementState))
    enrollment_type = rng.choice(TYPES)
    last_sync = NOW - rng.choice(AGES) if rng.random() < 0.8 else None
    authenticated = NOW - rng.choice(AGES)
    row = {
        "id": device_id,
        "org_id": DEFAULT_ORG_ID,
        "udid": device_id,
        "owner_type": "personal",
        "enrollment_type": enrollment_type,
        "management_state": state.value,
        "user_principal_name": USER,
        "last_sync_at": last_sync,
        "inventory": {},
    }
    channel = {
        "id": device_id,
        "org_id": DEFAULT_ORG_ID,
        "device_id": device_id,
        "kind": "device",
        "enabled": True,
        "topic": "com.apple.mgmt.test",
        "push_unregistered": False,
        "awaiting_configuration": False,
        "authenticated_at": authenticated,
    }
    pending = state is ManagementState.ENROLLING
    seen = CountedDevice(
        managed=state in MANAGED_STATES or pending,
        last_contact_at=None if pending else last_sync,
        registration_pending_since=authenticated if pending else None,
        deleted=state in (ManagementState.RETIRED, ManagementState.WIPED, ManagementState.UNENROLLED),
        enrollment_method=_method(enrollment_type),
    )
    return row, channel, seen


async def test_sql_device_count_agrees_with_r202(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    rng = random.Random(7248)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(organizations).values(id=DEFAULT_ORG_ID, name="Org", created_at=NOW))
        records = SqlEnrollmentRecords(engine)
        for round_ in range(8):
            generated = [_random_device(rng) for _ in range(rng.randint(0, 25))]
            async with engine.begin() as conn:
                await conn.execute(devices.delete())
                if generated:
                    await conn.execute(insert(devices), [row for row, _, _ in generated])
                    await conn.execute(insert(enrollments), [channel for _, channel, _ in generated if channel])
            expected = sum(counts_toward_limit(seen, NOW) for _, _, seen in generated)
            assert await records.counted_devices(DEFAULT_ORG_ID, USER, NOW, excluding_udid=None) == expected, round_
            if generated:  # the enrolling device itself never counts against its own enrollment
                row, _, seen = generated[0]
                left_out = expected - counts_toward_limit(seen, NOW)
                counted = await records.counted_devices(DEFAULT_ORG_ID, USER, NOW, excluding_udid=str(row["udid"]))
                assert counted == left_out
            assert await records.counted_devices(DEFAULT_ORG_ID, "bob@example.com", NOW, excluding_udid=None) == 0
    finally:
        await engine.dispose()
