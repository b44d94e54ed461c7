"""The device side of ADE: the profile request a device in Setup Assistant POSTs to the DEP profile's `url`
(apple-protocols.md §7.5). The MachineInfo names the serial; Muster answers with the enrollment profile the
serial's ADE profile calls for, or refuses with the reason (unknown device, no profile assigned, expired token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from muster.domain import ade_tokens as token_rules
from muster.domain.ade_profiles import Platform, os_version_below
from muster.domain.clock import Clock
from muster.domain.device_names import render_device_name
from muster.protocols.apple.machine_info import decode_machine_info, software_update_required
from muster.services.ade_profile_settings import settings_from_graph
from muster.services.device_auth import DeviceRequestRejected
from muster.services.enrollment_profiles import EnrollmentProfiles
from muster.services.enrollment_requests import EnrollmentIntent

ADE_WITHOUT_USER = "appleBulkWithoutUser"


@dataclass(frozen=True)
class AdeEnrollmentTarget:
    ade_device_id: str
    org_id: str
    serial_number: str
    device_family: str | None
    token_expires_at: datetime | None
    profile_platform: str | None
    profile_settings: dict[str, Any] | None
    assignment_status: str


class AdeEnrollmentStore(Protocol):
    async def enrollment_target(self, serial_number: str) -> AdeEnrollmentTarget | None: ...

    async def record_failure(
        self, *, org_id: str, serial_number: str, reason: str, detail: str, now: datetime
    ) -> None: ...


class SoftwareUpdateRequired(Exception):
    """The device must update before it enrolls; `body` is Apple's JSON error the device acts on."""

    def __init__(self, body: bytes) -> None:
        super().__init__("software update required")
        self.body = body


def _issued_by_any(certificate: x509.Certificate, authorities: Sequence[x509.Certificate]) -> bool:
    """Apple's device CA is expired and SHA-1 (apple-protocols.md §7.5): check the signature, not dates or policy."""
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


class AdeEnrollment:
    def __init__(
        self,
        *,
        store: AdeEnrollmentStore,
        profiles: EnrollmentProfiles,
        clock: Clock,
        device_authorities: Sequence[x509.Certificate] = (),
    ) -> None:
        self._device_authorities = device_authorities
        self._store = store
        self._profiles = profiles
        self._clock = clock

    async def profile_for(self, body: bytes) -> bytes:
        """The signed enrollment profile for the device whose signed MachineInfo is `body`."""
        info, signer = decode_machine_info(body)
        if self._device_authorities and not _issued_by_any(signer, self._device_authorities):
            raise DeviceRequestRejected("The request is not signed by an Apple device identity.", status=403)
        target = await self._store.enrollment_target(info.serial)
        if target is None:
            raise DeviceRequestRejected(
                "This device is not assigned to this MDM server in Apple Business Manager.", status=403
            )
        now = self._clock.now()
        if target.token_expires_at is None or token_rules.is_expired(target.token_expires_at, now):
            await self._refuse(target, "tokenExpired", "The enrollment program token has expired; renew it.")
        if (
            target.profile_settings is None
            or target.profile_platform is None
            or target.assignment_status != "succeeded"
        ):
            await self._refuse(
                target, "noProfileAssigned", "No enrollment profile is assigned to this device (ADE-25)."
            )
        settings = settings_from_graph(target.profile_settings, platform=Platform(target.profile_platform))
        if settings.requires_user_authentication:
            await self._refuse(
                target,
                "userAffinityUnavailable",
                "Profiles with user affinity need a user sign-in, which this server does not offer yet.",
            )
        minimum = settings.minimum_os_version
        if minimum and info.mdm_can_request_software_update and os_version_below(info.os_version or "", minimum):
            raise SoftwareUpdateRequired(
                software_update_required(
                    minimum, message=f"Update this device to {settings.platform.value} {minimum} or later to enroll."
                )
            )
        name = None
        if settings.device_name_template:
            name = render_device_name(
                settings.device_name_template, serial=target.serial_number, device_type=target.device_family or "Device"
            )
        profile, _ = await self._profiles.signed_profile(
            org_id=target.org_id,
            intent=EnrollmentIntent(
                enrollment_type=ADE_WITHOUT_USER, ade_device_id=target.ade_device_id, device_name=name
            ),
            actor=f"ade:{target.serial_number}",
        )
        return profile

    async def _refuse(self, target: AdeEnrollmentTarget, reason: str, message: str) -> NoReturn:
        await self._store.record_failure(
            org_id=target.org_id,
            serial_number=target.serial_number,
            reason=reason,
            detail=message,
            now=self._clock.now(),
        )
        raise DeviceRequestRejected(message, status=403)
