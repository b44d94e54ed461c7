"""SQL storage of check-in messages: enrollment lifecycle, certificate binding, push and bootstrap tokens.

One method, one transaction (part of `muster.services.ports.MdmStore`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.commands import PENDING, DeliveryStatus
from muster.domain.devices import ManagementState
from muster.services.ports import (
    AuthenticateRecord,
    CertificateBinding,
    TokenUpdateOutcome,
    TokenUpdateRecord,
)
from muster.store.fit import fit
from muster.store.rbac import inherited_device_tags
from muster.store.tables import (
    ade_devices,
    ade_profiles,
    checkin_messages,
    command_deliveries,
    device_certificates,
    devices,
    enrollment_requests,
    enrollments,
)

_PENDING = [s.value for s in PENDING]


class SqlCheckinStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def certificate_binding(self, fingerprint: str) -> CertificateBinding | None:
        query = select(
            device_certificates.c.org_id,
            device_certificates.c.enrollment_request_id,
            device_certificates.c.enrollment_id,
        ).where(device_certificates.c.sha256 == fingerprint)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (
            CertificateBinding(fingerprint, row.org_id, row.enrollment_request_id, row.enrollment_id) if row else None
        )

    # -- check-in -------------------------------------------------------------------------------------------

    async def authenticate(self, record: AuthenticateRecord) -> None:
        async with self._engine.begin() as conn:
            device_id = await self._device_for(conn, record)
            exists = (
                await conn.execute(select(enrollments.c.id).where(enrollments.c.id == record.enrollment_id))
            ).first()
            values = {
                "device_id": device_id,
                "enabled": False,
                "topic": record.topic,
                "authenticated_at": record.now,
                "last_seen_at": record.now,
                "checked_out_at": None,
            }
            if exists:
                await conn.execute(update(enrollments).where(enrollments.c.id == record.enrollment_id).values(values))
            else:
                await conn.execute(
                    insert(enrollments).values(
                        id=record.enrollment_id,
                        org_id=record.org_id,
                        kind=record.kind,
                        push_unregistered=False,
                        awaiting_configuration=False,
                        **values,
                    )
                )
            await self._cancel_pending(conn, record.enrollment_id, include_user_channels=True)
            await conn.execute(
                update(device_certificates)
                .where(device_certificates.c.sha256 == record.certificate_fingerprint)
                .values(enrollment_id=record.enrollment_id)
            )
            if record.enrollment_request_id:
                await conn.execute(
                    update(enrollment_requests)
                    .where(enrollment_requests.c.id == record.enrollment_request_id)
                    .values(status="authenticated")
                )
            await self._save_raw(conn, record.enrollment_id, "Authenticate", record.raw, record.now)

    async def _device_for(self, conn: AsyncConnection, record: AuthenticateRecord) -> str:
        """Find the device this enrollment belongs to (re-enrollment keeps the record), or create it."""
        existing = (
            await conn.execute(select(enrollments.c.device_id).where(enrollments.c.id == record.enrollment_id))
        ).scalar()
        if existing is None and record.kind == "DEVICE":
            existing = (await conn.execute(select(devices.c.id).where(devices.c.udid == record.device_key))).scalar()
        r = enrollment_requests.c
        request = None
        if record.enrollment_request_id:
            query = select(r.user_principal_name, r.enrollment_type, r.ade_device_id, r.decision).where(
                r.id == record.enrollment_request_id
            )
            request = (await conn.execute(query)).first()
        enrollment_type = request.enrollment_type if request else "profileEnrollment"
        if record.kind == "USER_ENROLLMENT":
            enrollment_type = "userEnrollment"
        values: dict[str, Any] = {
            **fit(devices, record.device_fields),
            "management_state": ManagementState.ENROLLING.value,
            "user_principal_name": request.user_principal_name if request else None,
            "enrollment_type": enrollment_type,
            "unenrolled_at": None,
        }
        if request is not None and request.ade_device_id:
            values["owner_type"] = "company"  # ADE devices are corporate-owned (ADE-29)
        decision = request.decision if request is not None else None
        if decision:  # the enrollment gate's: ownership (corporate identifiers, DEM) and the policies applied
            values["owner_type"] = decision["ownership"]
            if decision["enrollmentType"] == "deviceEnrollmentManager":
                values["enrollment_type"] = decision["enrollmentType"]
        if existing is None:
            existing = str(uuid.uuid4())
            tags = await inherited_device_tags(conn, request.ade_device_id if request is not None else None)
            await conn.execute(
                insert(devices).values(
                    id=existing,
                    org_id=record.org_id,
                    udid=record.device_key if record.kind == "DEVICE" else None,
                    inventory={},
                    scope_tag_ids=tags,
                    **{"owner_type": "unknown", **values},
                    **({"enrollment_decision": decision} if decision else {}),  # None would store JSON null
                )
            )
        else:
            await conn.execute(update(devices).where(devices.c.id == existing).values(values))
            if decision:  # the Enrollment page shows the policies of the device's first enrollment
                await conn.execute(
                    update(devices)
                    .where(devices.c.id == existing, devices.c.enrollment_decision.is_(None))
                    .values(enrollment_decision=decision)
                )
        if request is not None and request.ade_device_id:
            await conn.execute(
                update(ade_devices)
                .where(ade_devices.c.id == request.ade_device_id)
                .values(managed_device_id=existing, enrollment_state="enrolled", updated_at=record.now)
            )
        return str(existing)

    async def token_update(self, record: TokenUpdateRecord) -> TokenUpdateOutcome:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(enrollments.c.device_id, enrollments.c.enabled).where(
                        enrollments.c.id == record.enrollment_id
                    )
                )
            ).first()
            values: dict[str, Any] = {
                "enabled": True,
                "topic": record.topic,
                "push_token": record.push_token,
                "push_magic": record.push_magic,
                "push_unregistered": False,
                "awaiting_configuration": record.awaiting_configuration,
                "token_updated_at": record.now,
                "last_seen_at": record.now,
            }
            if record.unlock_token_encrypted is not None:
                values["unlock_token_encrypted"] = record.unlock_token_encrypted
            if row is None:
                # A user channel's first TokenUpdate creates it under its device channel.
                device_id = (
                    await conn.execute(select(enrollments.c.device_id).where(enrollments.c.id == record.parent_id))
                ).scalar()
                if device_id is None:
                    raise LookupError(f"enrollment {record.enrollment_id} has not authenticated")
                await conn.execute(
                    insert(enrollments).values(
                        id=record.enrollment_id,
                        org_id=record.org_id,
                        device_id=device_id,
                        parent_id=record.parent_id,
                        kind=record.kind,
                        user_short_name=record.user_short_name,
                        user_long_name=record.user_long_name,
                        **values,
                    )
                )
                newly_enrolled = True
            else:
                device_id, newly_enrolled = row.device_id, not row.enabled
                await conn.execute(update(enrollments).where(enrollments.c.id == record.enrollment_id).values(values))
            if newly_enrolled and record.parent_id is None:
                await conn.execute(
                    update(devices)
                    .where(devices.c.id == device_id)
                    .values(
                        management_state=ManagementState.MANAGED.value,
                        enrolled_at=record.now,
                        last_sync_at=record.now,
                    )
                )
            intent = None
            if newly_enrolled and record.enrollment_request_id:
                # The name the ADE template gave, and the device's ADE profile (its Shared iPad settings).
                query = (
                    select(enrollment_requests.c.device_name, ade_profiles.c.platform, ade_profiles.c.settings)
                    .select_from(
                        enrollment_requests.outerjoin(
                            ade_devices, ade_devices.c.id == enrollment_requests.c.ade_device_id
                        ).outerjoin(ade_profiles, ade_profiles.c.id == ade_devices.c.profile_id)
                    )
                    .where(enrollment_requests.c.id == record.enrollment_request_id)
                )
                intent = (await conn.execute(query)).first()
            await self._save_raw(conn, record.enrollment_id, "TokenUpdate", record.raw, record.now)
            owner = (await conn.execute(select(devices.c.owner_type).where(devices.c.id == device_id))).scalar()
        return TokenUpdateOutcome(
            device_id=str(device_id),
            newly_enrolled=newly_enrolled,
            personal=owner == "personal",
            requested_name=intent.device_name if intent else None,
            ade_profile_platform=intent.platform if intent else None,
            ade_profile_settings=intent.settings if intent else None,
        )

    async def check_out(self, *, enrollment_id: str, raw: bytes, now: datetime) -> None:
        async with self._engine.begin() as conn:
            device_id = (
                await conn.execute(
                    update(enrollments)
                    .where(enrollments.c.id == enrollment_id)
                    .values(enabled=False, checked_out_at=now)
                    .returning(enrollments.c.device_id, enrollments.c.parent_id)
                )
            ).first()
            await self._cancel_pending(conn, enrollment_id, include_user_channels=True)
            if device_id is not None and device_id.parent_id is None:
                # A device that was retired or wiped keeps that state; otherwise it left on its own.
                await conn.execute(
                    update(devices)
                    .where(devices.c.id == device_id.device_id)
                    .where(
                        devices.c.management_state.not_in([ManagementState.RETIRED.value, ManagementState.WIPED.value])
                    )
                    .values(management_state=ManagementState.UNENROLLED.value, unenrolled_at=now)
                )
            await self._save_raw(conn, enrollment_id, "CheckOut", raw, now)

    async def save_checkin(self, *, enrollment_id: str, message_type: str, raw: bytes, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await self._save_raw(conn, enrollment_id, message_type, raw, now)

    async def set_bootstrap_token(
        self, *, enrollment_id: str, encrypted: bytes | None, raw: bytes, now: datetime
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(enrollments).where(enrollments.c.id == enrollment_id).values(bootstrap_token_encrypted=encrypted)
            )
            await self._save_raw(conn, enrollment_id, "SetBootstrapToken", raw, now)

    async def bootstrap_token(self, enrollment_id: str) -> bytes | None:
        async with self._engine.connect() as conn:
            query = select(enrollments.c.bootstrap_token_encrypted).where(enrollments.c.id == enrollment_id)
            return (await conn.execute(query)).scalar()

    @staticmethod
    async def _save_raw(
        conn: AsyncConnection, enrollment_id: str, message_type: str, raw: bytes, now: datetime
    ) -> None:
        await conn.execute(
            insert(checkin_messages).values(
                enrollment_id=enrollment_id, message_type=message_type, raw=raw, received_at=now
            )
        )

    @staticmethod
    async def _cancel_pending(conn: AsyncConnection, enrollment_id: str, *, include_user_channels: bool) -> None:
        targets = [enrollment_id]
        if include_user_channels:
            children = await conn.execute(select(enrollments.c.id).where(enrollments.c.parent_id == enrollment_id))
            targets += [row.id for row in children]
        await conn.execute(
            update(command_deliveries)
            .where(command_deliveries.c.enrollment_id.in_(targets), command_deliveries.c.status.in_(_PENDING))
            .values(status=DeliveryStatus.CANCELLED.value)
        )
