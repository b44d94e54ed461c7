"""Apple enrollments through the enrollment gate: the Authenticate check-in is where an Apple device first says
what it is (model, OS version, serial, IMEI), on every path (profile-based, ADE, User Enrollment), so the gate
decides there. A refusal answers Authenticate with 403: the device does not install the MDM profile, and shows
the profile as invalid (PLR-03, 003_729e51c15a5a5608.txt:989)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from muster.domain.corporate_identifiers import DevicePlatform
from muster.domain.enrollment_decision import Decision
from muster.domain.enrollment_methods import EnrollmentMethod
from muster.domain.enrollment_restrictions import RestrictionPlatform
from muster.services.enrollment_gate import EnrollingDevice, EnrollmentGate, GateRequest

APPLE = "Apple"
_METHODS = {
    "appleBulkWithUser": EnrollmentMethod.APPLE_ADE_WITH_USER,
    "appleBulkWithoutUser": EnrollmentMethod.APPLE_ADE_WITHOUT_USER,
}


@dataclass(frozen=True)
class AppleIntent:
    """What the enrollment request behind an identity certificate says the enrollment is."""

    user_principal_name: str | None
    enrollment_type: str
    enrollment_profile_name: str | None  # the ADE profile's name (the filter property "Enrollment profile name")


class AppleIntents(Protocol):
    async def apple_intent(self, enrollment_request_id: str) -> AppleIntent | None: ...


class AppleAdmission:
    def __init__(self, *, gate: EnrollmentGate, intents: AppleIntents) -> None:
        self._gate = gate
        self._intents = intents

    async def admit(
        self,
        *,
        org_id: str,
        enrollment_request_id: str | None,
        user_enrollment: bool,
        udid: str | None,
        fields: Mapping[str, str],
    ) -> Decision:
        """The gate's decision on an Authenticate; raises EnrollmentRefused when refused."""
        intent = await self._intents.apple_intent(enrollment_request_id) if enrollment_request_id else None
        if user_enrollment:
            method = EnrollmentMethod.APPLE_USER_ENROLLMENT
        else:
            method = (
                _METHODS.get(intent.enrollment_type, EnrollmentMethod.APPLE_DEVICE_ENROLLMENT)
                if intent
                else (EnrollmentMethod.APPLE_DEVICE_ENROLLMENT)
            )
        product = fields.get("product_name") or fields.get("model") or ""
        platform, identity_platform = apple_platform(product)
        request = GateRequest(
            org_id=org_id,
            method=method,
            user_principal_name=intent.user_principal_name if intent else None,
            device=EnrollingDevice(
                platform=platform,
                identity_platform=identity_platform,
                udid=udid,
                serial_number=fields.get("serial_number"),
                imei=fields.get("imei"),
                os_version=fields.get("os_version"),
                manufacturer=APPLE,
                model=fields.get("model_name") or product or None,
            ),
            enrollment_request_id=enrollment_request_id,
            enrollment_profile_name=intent.enrollment_profile_name if intent else None,
        )
        return await self._gate.admit(request)


def apple_platform(product_name: str) -> tuple[RestrictionPlatform, DevicePlatform]:
    """The restriction platform tab and corporate-identifier row of an Apple product ("iPhone16,1", "Mac15,3")."""
    if product_name.startswith(("Mac", "VirtualMac", "iMac")):
        return RestrictionPlatform.MAC, DevicePlatform.MACOS
    if product_name.startswith("iPad"):
        return RestrictionPlatform.IOS, DevicePlatform.IPADOS
    return RestrictionPlatform.IOS, DevicePlatform.IOS
