"""SQL side of the enrollment gate: the devices that count toward a user's limit, enrollment-failure records and
admitting decisions (`muster.services.enrollment_gate.GateRecords`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.devices import ManagementState
from muster.domain.enrollment_decision import CONTACT_WINDOW, PENDING_WINDOW, Decision
from muster.domain.enrollment_methods import SHARED_MODE_METHODS
from muster.protocols.odata import QueryOptions
from muster.services.apple_admission import AppleIntent
from muster.services.enrollment_gate import FailureRecord
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables import (
    ade_devices,
    ade_profiles,
    devices,
    enrollment_failures,
    enrollment_requests,
    enrollments,
)

d, e = devices.c, enrollments.c

# Enrolled and still managed: a retire or wipe not yet carried out leaves the device managed until it is.
MANAGED_STATES = (ManagementState.MANAGED, ManagementState.RETIRE_PENDING, ManagementState.WIPE_PENDING)


def counts_toward_limit(now: datetime) -> ColumnElement[bool]:
    """R-202 in SQL, as `muster.domain.enrollment_decision.counts_toward_limit` states it: managed and seen by
    the server in the last 90 days, or registration pending (Authenticate received, no TokenUpdate yet) for at most
    24 hours; never retired, wiped or checked out (deleted), nor enrolled in a shared-device mode."""
    pending = and_(
        d.management_state == ManagementState.ENROLLING.value,
        exists().where(e.device_id == d.id, e.authenticated_at >= now - PENDING_WINDOW),
    )
    seen = and_(d.management_state.in_([s.value for s in MANAGED_STATES]), d.last_sync_at >= now - CONTACT_WINDOW)
    return and_(or_(seen, pending), not_(d.enrollment_type.in_([m.value for m in SHARED_MODE_METHODS])))


f = enrollment_failures.c
# The Enrollment failures report's columns as Graph-style properties, for `$filter` and `$orderby`.
FAILURE_FIELDS: dict[str, Field] = {
    "id": Field(f.id, str),
    "occurredDateTime": Field(f.occurred_at, datetime),
    "userPrincipalName": Field(f.user_principal_name, str),
    "enrollmentMethod": Field(f.enrollment_method, str),
    "operatingSystem": Field(f.operating_system, str),
    "osVersion": Field(f.os_version, str),
    "serialNumber": Field(f.serial_number, str),
    "stage": Field(f.stage, str),
    "reason": Field(f.reason, str),
    "failureReason": Field(f.failure_reason, str),
}


class SqlEnrollmentRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def counted_devices(
        self, org_id: str, user_principal_name: str, now: datetime, *, excluding_udid: str | None
    ) -> int:
        query = (
            select(func.count())
            .select_from(devices)
            .where(d.org_id == org_id, d.user_principal_name == user_principal_name, counts_toward_limit(now))
        )
        if excluding_udid is not None:
            query = query.where(or_(d.udid.is_(None), d.udid != excluding_udid))
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def record_failure(self, failure: FailureRecord) -> None:
        decision = failure.decision
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(enrollment_failures).values(
                    id=failure.id,
                    org_id=failure.org_id,
                    enrollment_request_id=failure.enrollment_request_id,
                    stage="enrollmentRestrictions",
                    reason=decision.reason,
                    detail=decision.message,
                    occurred_at=failure.occurred_at,
                    user_principal_name=failure.user_principal_name,
                    enrollment_method=failure.enrollment_method,
                    operating_system=failure.operating_system,
                    os_version=failure.os_version,
                    serial_number=failure.serial_number,
                    failure_reason=decision.failure_reason,
                    remediation=decision.remediation,
                    decision=decision.to_json(),
                )
            )

    async def keep_decision(self, enrollment_request_id: str, decision: Decision) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(enrollment_requests)
                .where(enrollment_requests.c.id == enrollment_request_id)
                .values(decision=decision.to_json())
            )

    async def apple_intent(self, enrollment_request_id: str) -> AppleIntent | None:
        r, a, p = enrollment_requests.c, ade_devices.c, ade_profiles.c
        query = (
            select(r.user_principal_name, r.enrollment_type, p.display_name)
            .select_from(
                enrollment_requests.outerjoin(ade_devices, a.id == r.ade_device_id).outerjoin(
                    ade_profiles, p.id == a.profile_id
                )
            )
            .where(r.id == enrollment_request_id)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return AppleIntent(row.user_principal_name, row.enrollment_type, row.display_name) if row else None

    async def failures_page(
        self, org_id: str, options: QueryOptions
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        base = select(enrollment_failures).where(f.org_id == org_id)
        async with self._engine.connect() as conn:
            query = page_query(base, fields=FAILURE_FIELDS, options=options, id_column=f.id)
            rows = [dict(r._mapping) for r in await conn.execute(query)]
            total = None
            if options.count:
                total = (await conn.execute(count_query(base, FAILURE_FIELDS, options))).scalar_one()
        page, token = split_page(rows, options=options, fields=FAILURE_FIELDS, id_key="id")
        return list(page), token, total

    async def failure(self, org_id: str, failure_id: str) -> dict[str, Any] | None:
        query = select(enrollment_failures).where(f.org_id == org_id, f.id == failure_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row else None

    async def device_decision(self, org_id: str, device_id: str) -> dict[str, Any] | None:
        query = select(d.enrollment_decision, d.user_principal_name).where(d.org_id == org_id, d.id == device_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return dict(row._mapping) if row else None
