"""SQL storage of webhook subscriptions and of the delivery outbox.

Claiming is multi-process safe: due rows are selected `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises
writers anyway) and leased in the same transaction, so two servers never attempt the same delivery at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.services.webhooks import ClaimedDelivery
from muster.store.tables_audit import webhook_deliveries, webhook_subscriptions

s = webhook_subscriptions.c
d = webhook_deliveries.c

_PUBLIC = [s.id, s.notification_url, s.events, s.description, s.created_by, s.created_at, s.updated_at]


def _subscription(row: Mapping[Any, Any]) -> dict[str, Any]:
    found = dict(row)
    found["events"] = [event for event in found["events"].split(",") if event]
    return found


class SqlWebhookStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_subscription(self, values: Mapping[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(webhook_subscriptions).values(**values))

    async def subscriptions(self, org_id: str) -> list[dict[str, Any]]:
        query = select(*_PUBLIC).where(s.org_id == org_id).order_by(s.created_at, s.id)
        async with self._engine.connect() as conn:
            return [_subscription(row._mapping) for row in await conn.execute(query)]

    async def subscription(self, org_id: str, subscription_id: str) -> dict[str, Any] | None:
        query = select(*_PUBLIC).where(s.org_id == org_id, s.id == subscription_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _subscription(row._mapping) if row else None

    async def update_subscription(self, org_id: str, subscription_id: str, values: Mapping[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(webhook_subscriptions).where(s.org_id == org_id, s.id == subscription_id).values(**values)
            )

    async def delete_subscription(self, org_id: str, subscription_id: str) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(webhook_deliveries).where(d.subscription_id == subscription_id))
            result = await conn.execute(
                delete(webhook_subscriptions).where(s.org_id == org_id, s.id == subscription_id)
            )
        return bool(result.rowcount)

    async def deliveries(self, org_id: str, subscription_id: str, limit: int) -> list[dict[str, Any]]:
        query = (
            select(
                d.id,
                d.event_id,
                d.event_type,
                d.status,
                d.attempts,
                d.next_attempt_at,
                d.last_status_code,
                d.last_error,
                d.created_at,
                d.delivered_at,
            )
            .where(d.org_id == org_id, d.subscription_id == subscription_id)
            .order_by(d.created_at.desc(), d.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def enqueue(self, *, org_id: str, event_id: str, event_type: str, body: str, now: datetime) -> int:
        async with self._engine.begin() as conn:
            wanted = select(s.id).where(s.org_id == org_id, s.events.contains(f",{event_type},"))
            subscription_ids = list((await conn.execute(wanted)).scalars())
            if subscription_ids:
                await conn.execute(
                    insert(webhook_deliveries),
                    [
                        {
                            "id": str(uuid.uuid4()),
                            "org_id": org_id,
                            "subscription_id": subscription_id,
                            "event_id": event_id,
                            "event_type": event_type,
                            "body": body,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                        for subscription_id in subscription_ids
                    ],
                )
        return len(subscription_ids)

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[ClaimedDelivery]:
        due = or_(
            and_(d.status == "pending", d.next_attempt_at <= now),
            and_(d.status == "delivering", d.lease_until < now),
        )
        query = (
            select(d.id, d.event_id, d.event_type, d.body, d.attempts, s.notification_url, s.secret_encrypted)
            .select_from(webhook_deliveries.join(webhook_subscriptions, s.id == d.subscription_id))
            .where(due)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=webhook_deliveries)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
            for row in rows:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(d.id == row.id)
                    .values(status="delivering", attempts=row.attempts + 1, lease_until=lease_until)
                )
        return [
            ClaimedDelivery(
                id=row.id,
                event_id=row.event_id,
                event_type=row.event_type,
                body=row.body,
                attempts=row.attempts + 1,
                notification_url=row.notification_url,
                secret_encrypted=row.secret_encrypted,
            )
            for row in rows
        ]

    async def finish(
        self,
        delivery_id: str,
        *,
        status: str,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(d.id == delivery_id)
                .values(
                    status=status,
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    last_status_code=status_code,
                    last_error=error,
                    delivered_at=now if status == "succeeded" else None,
                )
            )

    async def purge_finished(self, older_than: datetime) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(webhook_deliveries).where(d.status.in_(("succeeded", "failed")), d.created_at < older_than)
            )
        return int(result.rowcount)
