"""Enrollment program tokens warn 30, 14, 7 and 1 days before they expire, once each (ADE-07, seed 000:68)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from muster.app import ensure_default_organization
from muster.domain.clock import FixedClock
from muster.services.ade_tokens import warn_expiring_tokens
from muster.store.ade_tokens import SqlTokenStore
from muster.store.audit import SqlAuditSink
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.tables import DEFAULT_ORG_ID, dep_tokens
from muster.store.tables_audit import audit_log

START = datetime(2026, 1, 1, tzinfo=UTC)


async def test_each_threshold_warns_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'muster.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    clock = FixedClock(START)
    await ensure_default_organization(engine, "Test", START)
    async with engine.begin() as conn:
        await conn.execute(
            insert(dep_tokens).values(
                id="t1",
                org_id=DEFAULT_ORG_ID,
                name="Main",
                program="dep",
                certificate_pem="-",
                key_encrypted=b"-",
                token_expires_at=START + timedelta(days=29, hours=1),
                expiry_warnings_sent=[],
                full_sync_required=False,
                sync_manual=False,
                sync_devices_seen=0,
                created_at=START,
                updated_at=START,
            )
        )
    store, audit = SqlTokenStore(engine), SqlAuditSink(engine, clock=clock, org_id=DEFAULT_ORG_ID)

    async def warnings() -> list[int]:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(audit_log.c.detail).where(audit_log.c.activity == "depTokenExpiryWarning"))
            ).all()
        return [row.detail["daysLeft"] for row in rows]

    assert await warn_expiring_tokens(store, audit, clock) == 1
    assert await warn_expiring_tokens(store, audit, clock) == 0  # once per threshold
    clock.advance(timedelta(days=15, hours=2))  # within 14 days
    await warn_expiring_tokens(store, audit, clock)
    clock.advance(timedelta(days=13, hours=12))  # within a day: the 7- and 1-day thresholds, in one warning
    await warn_expiring_tokens(store, audit, clock)
    clock.advance(timedelta(days=2))  # expired: nothing more to warn about here (sync refuses instead)
    assert await warn_expiring_tokens(store, audit, clock) == 0
    assert await warnings() == [29, 13, 0]
    await engine.dispose()
