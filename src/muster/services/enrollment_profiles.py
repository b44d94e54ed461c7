"""Profile-based Apple enrollment (apple-protocols.md §4, §10.1): the signed `.mobileconfig` an admin hands to
a user (or installs on a userless device). Each download carries a fresh one-time SCEP challenge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding

from muster.domain.errors import PreconditionMissing
from muster.protocols.apple.profiles import EnrollmentProfileSpec, build_enrollment_profile, encode_profile
from muster.protocols.cms import sign_attached
from muster.services.audit import AuditSink
from muster.services.enrollment_requests import EnrollmentChallenges, EnrollmentIntent
from muster.services.server_identity import ServerIdentity

MOBILECONFIG_TYPE = "application/x-apple-aspen-config"


@dataclass(frozen=True)
class DeviceEndpoints:
    """Where devices reach this server; the MDM payload's URLs are immutable once a device enrolls."""

    public_url: str

    @property
    def server_url(self) -> str:
        return f"{self.public_url}/mdm/connect"

    @property
    def checkin_url(self) -> str:
        return f"{self.public_url}/mdm/checkin"

    @property
    def scep_url(self) -> str:
        return f"{self.public_url}/scep"

    @property
    def ade_enrollment_url(self) -> str:
        """Where ADE devices POST their MachineInfo (the DEP profile's `url`)."""
        return f"{self.public_url}/mdm/ade/enroll"

    @property
    def profile_identifier(self) -> str:
        """The enrollment profile's PayloadIdentifier: removing it (retire) unenrolls the device."""
        host = urlsplit(self.public_url).hostname or "localhost"
        labels = [label for label in reversed(host.split(".")) if label.isalnum() or "-" in label]
        return ".".join([*(labels or ["localhost"]), "muster", "enrollment"])


class EnrollmentProfiles:
    def __init__(
        self,
        *,
        challenges: EnrollmentChallenges,
        identity: ServerIdentity,
        endpoints: DeviceEndpoints,
        push_topic: Callable[[], Awaitable[str | None]],
        organization_name: str,
        audit: AuditSink,
    ) -> None:
        self._challenges = challenges
        self._identity = identity
        self._endpoints = endpoints
        self._push_topic = push_topic
        self._organization = organization_name
        self._audit = audit

    async def export(self, *, org_id: str, user_principal_name: str | None, actor: str) -> tuple[bytes, str]:
        """A signed enrollment profile for a named user, or userless when `user_principal_name` is None; returns
        (profile, enrollment request id)."""
        profile, request_id = await self.signed_profile(
            org_id=org_id, intent=EnrollmentIntent(user_principal_name=user_principal_name), actor=actor
        )
        await self._audit.admin_event(
            actor=actor,
            activity="exportEnrollmentProfile",
            target=user_principal_name,
            detail={"enrollmentRequestId": request_id},
        )
        return profile, request_id

    async def signed_profile(self, *, org_id: str, intent: EnrollmentIntent, actor: str) -> tuple[bytes, str]:
        """The signed `.mobileconfig` with a fresh one-time challenge; returns (profile, enrollment request id)."""
        topic = await self._push_topic()
        if topic is None:
            raise PreconditionMissing(
                "No Apple MDM push certificate is active: upload one before enrolling Apple devices."
            )
        request_id, challenge = await self._challenges.mint(org_id=org_id, intent=intent, created_by=actor)
        spec = EnrollmentProfileSpec(
            identifier=self._endpoints.profile_identifier,
            display_name=f"{self._organization} device management",
            organization=self._organization,
            description="Installs the management profile that enrolls this device in Muster.",
            server_url=self._endpoints.server_url,
            checkin_url=self._endpoints.checkin_url,
            topic=topic,
            scep_url=self._endpoints.scep_url,
            scep_challenge=challenge,
            scep_name=self._organization,
            scep_subject=(("O", self._organization), ("CN", f"Muster identity {request_id[:8]}")),
            ca_certificates=(self._identity.authority.certificate.public_bytes(Encoding.DER),),
        )
        signer = self._identity.profile_signer
        signed = sign_attached(
            encode_profile(build_enrollment_profile(spec)),
            signer.certificate,
            signer.key,
            extra_certificates=signer.chain,
        )
        return signed, request_id
