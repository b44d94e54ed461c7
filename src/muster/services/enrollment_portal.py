"""The enrollment portal's rules (Intune's Company Portal website, profile-based enrollment): a signed-in
directory user downloads an enrollment profile for their own device, and only while their account is enabled.
"""

from __future__ import annotations

from muster.domain.clock import Clock
from muster.domain.sign_in import SignedInUser
from muster.services.enrollment_profiles import EnrollmentProfiles
from muster.services.identity_provider import IdentityProviders
from muster.services.oidc_sign_in import SignInDirectory, SignInFailures, SignInRefused


class EnrollmentPortal:
    def __init__(
        self,
        *,
        directory: SignInDirectory,
        providers: IdentityProviders,
        profiles: EnrollmentProfiles,
        failures: SignInFailures,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._providers = providers
        self._profiles = profiles
        self._failures = failures
        self._clock = clock

    async def mfa_required(self, org_id: str) -> bool:
        settings = await self._providers.get(org_id)
        return settings is not None and settings.require_mfa_for_enrollment

    async def admit_local(self, org_id: str, user: SignedInUser) -> SignedInUser:
        """A local-account sign-in may enroll only with its second factor when the organisation requires MFA."""
        if await self.mfa_required(org_id) and not user.multifactor:
            await self._fail(org_id, "signIn", "mfaRequired", f"{user.user_principal_name} signed in without TOTP")
            raise SignInRefused(
                "Your organisation requires multifactor authentication to enroll a device: ask your administrator "
                "to turn on an authenticator app for your account.",
                reason="mfaRequired",
            )
        return user

    async def download_profile(self, org_id: str, user_principal_name: str) -> bytes:
        """The signed enrollment profile for the signed-in user, who must still be an enabled directory user
        (an account disabled or deprovisioned after sign-in gets nothing more)."""
        user_principal_name = await self.still_enabled(org_id, user_principal_name)
        return await self._profiles.export(
            org_id=org_id, user_principal_name=user_principal_name, actor=user_principal_name
        )

    async def still_enabled(self, org_id: str, user_principal_name: str) -> str:
        """The directory spelling of a signed-in user who may still enroll; refuses a disabled or removed one."""
        user = await self._directory.find_user(org_id, user_principal_name)
        if user is None or not user.account_enabled:
            reason = "userUnknown" if user is None else "userDisabled"
            detail = f"{user_principal_name[:320]} asked for an enrollment profile but is no longer enabled"
            await self._fail(org_id, "profileDownload", reason, detail)
            raise SignInRefused(
                f"The account {user_principal_name} can no longer enroll devices: it is disabled or was removed.",
                reason=reason,
            )
        return user.user_principal_name

    async def _fail(self, org_id: str, stage: str, reason: str, detail: str) -> None:
        await self._failures.record_failure(
            org_id=org_id, request_id=None, stage=stage, reason=reason, detail=detail, now=self._clock.now()
        )
