"""SQL storage of the audit log: writing events, Graph `auditEvents` listing, and retention."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.clock import Clock
from muster.protocols.odata import QueryOptions
from muster.services.audit import (
    Actor,
    AuditRecord,
    ServiceChange,
    current_activity,
    modified_properties,
    redact,
)
from muster.store.fit import fit
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables_audit import audit_log

a = audit_log.c

# Graph `auditEvent` property -> column, for $filter and $orderby.
AUDIT_FIELDS: dict[str, Field] = {
    "id": Field(a.id, str),
    "activityDateTime": Field(a.occurred_at, datetime),
    "category": Field(a.category, str),
    "componentName": Field(a.category, str),
    "activity": Field(a.activity, str),
    "activityType": Field(a.activity_type, str),
    "activityOperationType": Field(a.operation_type, str),
    "activityResult": Field(a.result, str),
    "correlationId": Field(a.correlation_id, str),
    "actor": Field(a.actor_name, str),
    "actor/userPrincipalName": Field(a.actor_name, str),
    "actor/applicationDisplayName": Field(a.actor_name, str),
    "actor/ipAddress": Field(a.ip_address, str),
}


class SqlAuditSink:
    """Writes audit events. Service details given while an admin request is served join that request's event."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock, org_id: str) -> None:
        self._engine = engine
        self._clock = clock
        self._org = org_id

    async def device_event(self, *, activity: str, target: str, detail: Mapping[str, Any]) -> None:
        await self.write(
            AuditRecord(
                category="device",
                activity=activity,
                activity_type=f"Security {activity}",
                operation_type="Action",
                result="failure",
                actor=Actor(kind="Device", name=target, id=target),
                resources=[_resource("enrollment", target, detail)],
                detail=redact(detail),
            )
        )

    async def admin_event(
        self,
        *,
        actor: str,
        activity: str,
        target: str | None,
        detail: Mapping[str, Any],
        result: str = "success",
    ) -> None:
        change = ServiceChange(actor=actor, activity=activity, target=target, detail=redact(detail), result=result)
        request = current_activity()
        if request is not None:
            request.changes.append(change)
            return
        await self.write(
            AuditRecord(
                category="system" if actor == "system" else "admin",
                activity=activity,
                activity_type=f"Action {activity}",
                operation_type="Action",
                result=result,
                actor=Actor(kind="System" if actor == "system" else "ItPro", name=actor),
                resources=[_resource("object", target, change.detail)] if target else [],
                detail=change.detail,
            )
        )

    async def write(self, record: AuditRecord) -> None:
        values = fit(
            audit_log,
            {
                "category": record.category,
                "activity": record.activity,
                "activity_type": record.activity_type,
                "operation_type": record.operation_type,
                "result": record.result,
                "status_code": record.status_code,
                "correlation_id": record.correlation_id,
                "actor_type": record.actor.kind,
                "actor_id": record.actor.id,
                "actor_name": record.actor.name,
                "ip_address": record.actor.ip_address,
                "http_method": record.http_method,
                "path": record.path,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(audit_log).values(
                    id=str(uuid.uuid4()),
                    org_id=self._org,
                    occurred_at=self._clock.now(),
                    resources=list(record.resources),
                    detail=redact(record.detail),
                    **values,
                )
            )


def _resource(kind: str, resource_id: str | None, detail: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "displayName": resource_id,
        "type": kind,
        "resourceId": resource_id,
        "modifiedProperties": modified_properties(detail),
    }


class SqlAuditLog:
    """Reading and purging the audit log."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, org_id: str, options: QueryOptions) -> tuple[list[dict[str, Any]], str | None, int | None]:
        base = select(audit_log).where(a.org_id == org_id)
        async with self._engine.connect() as conn:
            query = page_query(base, fields=AUDIT_FIELDS, options=options, id_column=a.id)
            rows = [dict(r._mapping) for r in await conn.execute(query)]
            total = None
            if options.count:
                total = (await conn.execute(count_query(base, AUDIT_FIELDS, options))).scalar_one()
        page, token = split_page(rows, options=options, fields=AUDIT_FIELDS, id_key="id")
        return list(page), token, total

    async def get(self, org_id: str, event_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(audit_log).where(a.org_id == org_id, a.id == event_id))).first()
        return dict(row._mapping) if row else None

    async def activity_types(self, org_id: str, category: str | None) -> list[str]:
        query = select(a.activity_type).where(a.org_id == org_id).distinct().order_by(a.activity_type)
        if category is not None:
            query = query.where(a.category == category)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def categories(self, org_id: str) -> list[str]:
        query = select(a.category).where(a.org_id == org_id).distinct().order_by(a.category)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def purge(self, older_than: datetime) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(audit_log).where(a.occurred_at < older_than))).rowcount
