"""The device side of ADE: the profile request a device in Setup Assistant POSTs to the DEP profile's `url`
(apple-protocols.md §7.5). The MachineInfo names the serial; Muster answers with the enrollment profile the
serial's ADE profile calls for, or refuses with the reason (unknown device, no profile assigned, expired token).

Profiles with user affinity bind the enrollment to a directory user (Graph `appleBulkWithUser`), signed in one of
two ways (003:4850-4859): Setup Assistant's legacy basic HTTP authentication at `url` (a 401 challenge, then the
credentials of a Muster local account), or modern authentication in a web view at `configuration_web_url`, where
the enrollment portal signs the user in (apple-protocols.md §7.6). Company Portal authentication needs Intune's
Company Portal app, which Muster does not have, so those profiles are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from muster.domain import ade_tokens as token_rules
from muster.domain.ade_profiles import AdeProfileSettings, AuthenticationMethod, Platform, os_version_below
from muster.domain.clock import Clock
from muster.domain.device_names import render_device_name
from muster.domain.errors import NotAllowed
from muster.domain.sign_in import TotpEnrollmentRequired, TotpRequired
from muster.protocols.apple.machine_info import decode_machine_info, software_update_required
from muster.services.ade_profile_settings import settings_from_graph
from muster.services.device_auth import DeviceRequestRejected
from muster.services.enrollment_profiles import EnrollmentProfiles
from muster.services.enrollment_requests import EnrollmentIntent
from muster.services.identity_provider import IdentityProviders
from muster.services.local_accounts import LocalAccounts, LocalAccountStore

ADE_WITHOUT_USER = "appleBulkWithoutUser"
ADE_WITH_USER = "appleBulkWithUser"
WEB_ENROLL_PATH = "/enroll/ade"  # the DEP profile's configuration_web_url, under the enrollment portal
_LEGACY = (AuthenticationMethod.SETUP_ASSISTANT, AuthenticationMethod.SETUP_ASSISTANT_MODERN)


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


class UserAuthenticationRequired(Exception):
    """Legacy Setup Assistant authentication: answer 401 with a Basic challenge, the device asks for credentials."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BasicCredentials:
    user_principal_name: str
    password: str


@dataclass(frozen=True)
class WebEnrollmentDevice:
    """A device whose signed MachineInfo opened the modern-authentication web view."""

    org_id: str
    serial_number: str


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
        accounts: LocalAccounts,
        account_store: LocalAccountStore,
        providers: IdentityProviders,
        clock: Clock,
        device_authorities: Sequence[x509.Certificate] = (),
    ) -> None:
        self._device_authorities = device_authorities
        self._store = store
        self._profiles = profiles
        self._accounts = accounts
        self._account_store = account_store
        self._providers = providers
        self._clock = clock

    async def profile_for(self, body: bytes, credentials: BasicCredentials | None = None) -> bytes:
        """The signed enrollment profile for the device whose signed MachineInfo is `body`; with user affinity,
        `credentials` are what the user typed after the legacy challenge."""
        target, settings = await self._verified_device(body)
        method = settings.authentication_method
        if method is None:
            return await self._issue(target, settings, user_principal_name=None)
        if method not in _LEGACY:
            await self._refuse(
                target,
                "userAffinityUnavailable",
                "Company Portal authentication needs Intune's Company Portal app, which Muster does not offer: "
                "use Setup Assistant authentication in this enrollment profile.",
            )
        # A modern-authentication profile reaches `url` only from devices too old for the web view: they fall
        # back to legacy authentication (003:4859).
        user_principal_name = await self._legacy_sign_in(target, credentials)
        return await self._issue(target, settings, user_principal_name=user_principal_name)

    async def begin_web_enrollment(self, body: bytes) -> WebEnrollmentDevice:
        """The device that opened `configuration_web_url` with `body` as its `x-apple-aspen-deviceinfo`."""
        target, settings = await self._verified_device(body)
        if settings.authentication_method is not AuthenticationMethod.SETUP_ASSISTANT_MODERN:
            await self._refuse(
                target,
                "authenticationMethodMismatch",
                "This device's enrollment profile does not use Setup Assistant with modern authentication.",
            )
        return WebEnrollmentDevice(org_id=target.org_id, serial_number=target.serial_number)

    async def profile_for_user(self, device: WebEnrollmentDevice, *, user_principal_name: str) -> bytes:
        """The enrollment profile bound to the user who signed in on the web view `device` opened."""
        target = await self._store.enrollment_target(device.serial_number)
        if target is None or target.org_id != device.org_id:
            raise DeviceRequestRejected(
                "This device is not assigned to this MDM server in Apple Business Manager.", status=403
            )
        settings = await self._enrollable(target)
        if settings.authentication_method is not AuthenticationMethod.SETUP_ASSISTANT_MODERN:
            await self._refuse(
                target,
                "authenticationMethodMismatch",
                "This device's enrollment profile no longer uses Setup Assistant with modern authentication.",
            )
        return await self._issue(target, settings, user_principal_name=user_principal_name)

    async def _verified_device(self, body: bytes) -> tuple[AdeEnrollmentTarget, AdeProfileSettings]:
        info, signer = decode_machine_info(body)
        if self._device_authorities and not _issued_by_any(signer, self._device_authorities):
            raise DeviceRequestRejected("The request is not signed by an Apple device identity.", status=403)
        target = await self._store.enrollment_target(info.serial)
        if target is None:
            raise DeviceRequestRejected(
                "This device is not assigned to this MDM server in Apple Business Manager.", status=403
            )
        settings = await self._enrollable(target)
        minimum = settings.minimum_os_version
        if minimum and info.mdm_can_request_software_update and os_version_below(info.os_version or "", minimum):
            raise SoftwareUpdateRequired(
                software_update_required(
                    minimum, message=f"Update this device to {settings.platform.value} {minimum} or later to enroll."
                )
            )
        return target, settings

    async def _enrollable(self, target: AdeEnrollmentTarget) -> AdeProfileSettings:
        """The settings of the target's ADE profile, when its token is valid and the profile is assigned."""
        if target.token_expires_at is None or token_rules.is_expired(target.token_expires_at, self._clock.now()):
            await self._refuse(target, "tokenExpired", "The enrollment program token has expired; renew it.")
        if (
            target.profile_settings is None
            or target.profile_platform is None
            or target.assignment_status != "succeeded"
        ):
            await self._refuse(
                target, "noProfileAssigned", "No enrollment profile is assigned to this device (ADE-25)."
            )
        return settings_from_graph(target.profile_settings, platform=Platform(target.profile_platform))

    async def _legacy_sign_in(self, target: AdeEnrollmentTarget, credentials: BasicCredentials | None) -> str:
        """The user principal name of a local account signed in with Apple's basic HTTP authentication."""
        providers = await self._providers.get(target.org_id)
        if providers is not None and providers.require_mfa_for_enrollment:
            await self._refuse(
                target,
                "mfaRequired",
                "Your organisation requires multifactor authentication to enroll, which Setup Assistant's legacy "
                "authentication cannot ask for (003:4854): the administrator must choose modern authentication.",
            )
        if credentials is None:
            raise UserAuthenticationRequired("Sign in with your work account to set up this device.")
        upn = credentials.user_principal_name.strip()
        account = await self._account_store.by_upn(target.org_id, upn)
        if account is not None and account.credentials is None and providers is not None and providers.issuer:
            await self._refuse(
                target,
                "identityProviderAccount",
                f"{upn} signs in at the organisation's identity provider, which Setup Assistant's legacy "
                "authentication cannot reach: the administrator must choose modern authentication.",
            )
        try:
            user = await self._accounts.sign_in(
                org_id=target.org_id, user_principal_name=upn, password=credentials.password, otp=None
            )
        except (TotpRequired, TotpEnrollmentRequired):
            await self._refuse(
                target,
                "secondFactorUnavailable",
                f"{upn} signs in with an authenticator app, which Setup Assistant's legacy authentication "
                "cannot ask for: the administrator must choose modern authentication.",
            )
        except NotAllowed as refused:
            await self._record(target, "invalidCredentials", f"{upn[:320]}: {refused.message}")
            raise UserAuthenticationRequired(refused.message) from None
        return user.user_principal_name

    async def _issue(
        self, target: AdeEnrollmentTarget, settings: AdeProfileSettings, *, user_principal_name: str | None
    ) -> bytes:
        name = None
        if settings.device_name_template:
            name = render_device_name(
                settings.device_name_template, serial=target.serial_number, device_type=target.device_family or "Device"
            )
        intent = EnrollmentIntent(
            user_principal_name=user_principal_name,
            enrollment_type=ADE_WITHOUT_USER if user_principal_name is None else ADE_WITH_USER,
            ade_device_id=target.ade_device_id,
            device_name=name,
        )
        profile, _ = await self._profiles.signed_profile(
            org_id=target.org_id, intent=intent, actor=user_principal_name or f"ade:{target.serial_number}"
        )
        return profile

    async def _record(self, target: AdeEnrollmentTarget, reason: str, detail: str) -> None:
        await self._store.record_failure(
            org_id=target.org_id,
            serial_number=target.serial_number,
            reason=reason,
            detail=detail,
            now=self._clock.now(),
        )

    async def _refuse(self, target: AdeEnrollmentTarget, reason: str, message: str) -> NoReturn:
        await self._record(target, reason, message)
        raise DeviceRequestRejected(message, status=403)
