"""The enrollment portal's rules (Intune's Company Portal website, profile-based enrollment): a signed-in
directory user downloads an enrollment profile for their own device, and only while their account is enabled
and once they have accepted the terms and conditions assigned to them (seed-catalog-A TC-01).
"""

from __future__ import annotations

from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.sign_in import SignedInUser
from muster.domain.terms import TermsNotAccepted
from muster.services.enrollment_profiles import EnrollmentProfiles
from muster.services.identity_provider import IdentityProviders
from muster.services.oidc_sign_in import DirectoryUser, SignInDirectory, SignInFailures, SignInRefused
from muster.services.terms import Terms, TermsRow


class UserGroups(Protocol):
    async def group_ids_of(self, org_id: str, member_id: str) -> frozenset[str]:
        """Every group the user is in, nested groups included."""


class EnrollmentPortal:
    def __init__(
        self,
        *,
        directory: SignInDirectory,
        providers: IdentityProviders,
        profiles: EnrollmentProfiles,
        failures: SignInFailures,
        terms: Terms,
        groups: UserGroups,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._terms = terms
        self._groups = groups
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

    async def download_profile(self, org_id: str, user_principal_name: str) -> tuple[bytes, str]:
        """The signed enrollment profile for the signed-in user, who must still be an enabled directory user
        (an account disabled or deprovisioned after sign-in gets nothing more) who has accepted their terms;
        returns (profile, enrollment request id)."""
        user_principal_name = await self.ready_to_enroll(org_id, user_principal_name)
        return await self._profiles.export(
            org_id=org_id, user_principal_name=user_principal_name, actor=user_principal_name
        )

    async def ready_to_enroll(self, org_id: str, user_principal_name: str) -> str:
        """The directory spelling of a signed-in user who may enroll now: still enabled, and with no terms and
        conditions left to accept (TC-01; checked here so the gate holds whatever page the user came from)."""
        user = await self._enabled_user(org_id, user_principal_name)
        pending = await self._pending_terms(org_id, user.id)
        if pending:
            raise TermsNotAccepted(
                f"Accept the terms and conditions ({pending[0].title or 'untitled'}) before you enroll a device."
            )
        return user.user_principal_name

    async def pending_terms(self, org_id: str, user_principal_name: str) -> list[TermsRow]:
        """The terms the signed-in (and still enabled) user must accept, in the order to show them."""
        return await self._pending_terms(org_id, (await self._enabled_user(org_id, user_principal_name)).id)

    async def answer_terms(
        self, org_id: str, user_principal_name: str, *, terms_id: str, version: int, accept: bool
    ) -> None:
        """The user's answer on the terms page (TC-03): accepted, or declined (TC-10, recorded)."""
        user = await self._enabled_user(org_id, user_principal_name)
        answer = self._terms.accept if accept else self._terms.decline
        await answer(org_id, user.id, user.user_principal_name, terms_id, version, self._clock.now())

    async def _pending_terms(self, org_id: str, user_id: str) -> list[TermsRow]:
        return await self._terms.pending_for(org_id, user_id, await self._groups.group_ids_of(org_id, user_id))

    async def _enabled_user(self, org_id: str, user_principal_name: str) -> DirectoryUser:
        """The signed-in user as the directory has them now; refuses a disabled or removed one."""
        user = await self._directory.find_user(org_id, user_principal_name)
        if user is None or not user.account_enabled:
            reason = "userUnknown" if user is None else "userDisabled"
            detail = f"{user_principal_name[:320]} asked for an enrollment profile but is no longer enabled"
            await self._fail(org_id, "profileDownload", reason, detail)
            raise SignInRefused(
                f"The account {user_principal_name} can no longer enroll devices: it is disabled or was removed.",
                reason=reason,
            )
        return user

    async def _fail(self, org_id: str, stage: str, reason: str, detail: str) -> None:
        await self._failures.record_failure(
            org_id=org_id, request_id=None, stage=stage, reason=reason, detail=detail, now=self._clock.now()
        )
