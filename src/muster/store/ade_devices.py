"""Listing ADE devices (Graph `importedAppleDeviceIdentity`) with OData options."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.protocols.odata import QueryOptions
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables import ade_devices, ade_profiles

d = ade_devices.c

ADE_DEVICE_FIELDS: dict[str, Field] = {
    "id": Field(d.id, str),
    "serialNumber": Field(d.serial_number, str),
    "description": Field(d.description, str),
    "model": Field(d.model, str),
    "color": Field(d.color, str),
    "platform": Field(d.os, str),
    "deviceFamily": Field(d.device_family, str),
    "requestedEnrollmentProfileId": Field(d.profile_id, str),
    "profileAssignmentStatus": Field(d.assignment_status, str),
    "abmProfileStatus": Field(d.abm_profile_status, str),
    "abmStatus": Field(d.abm_status, str),
    "enrollmentState": Field(d.enrollment_state, str),
    "createdDateTime": Field(d.created_at, datetime),
    "lastModifiedDateTime": Field(d.updated_at, datetime),
}


class SqlAdeDeviceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self, org_id: str, token_id: str, options: QueryOptions
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        base = (
            select(
                d.id,
                d.serial_number,
                d.description,
                d.model,
                d.color,
                d.os,
                d.device_family,
                d.profile_id,
                d.assignment_status,
                d.assignment_error,
                d.assignment_attempts,
                d.abm_profile_status,
                d.abm_status,
                d.released_at,
                d.enrollment_state,
                d.managed_device_id,
                d.created_at,
                d.updated_at,
                ade_profiles.c.display_name.label("profile_name"),
            )
            .select_from(ade_devices.outerjoin(ade_profiles, ade_profiles.c.id == d.profile_id))
            .where(d.org_id == org_id, d.token_id == token_id)
        )
        async with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in await conn.execute(page_query(base, fields=ADE_DEVICE_FIELDS, options=options, id_column=d.id))
            ]
            total = (
                (await conn.execute(count_query(base, ADE_DEVICE_FIELDS, options))).scalar_one()
                if options.count
                else None
            )
        page, token = split_page(rows, options=options, fields=ADE_DEVICE_FIELDS, id_key="id")
        return list(page), token, total

    async def count(self, token_id: str) -> int:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(select(func.count()).select_from(ade_devices).where(d.token_id == token_id))
            ).scalar_one()
