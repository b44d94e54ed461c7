"""What a device reads out of an enrollment profile: verify the CMS signature, find the payloads."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from muster.protocols.apple import plist
from muster.protocols.cms import verify_attached
from muster.protocols.errors import ParseError


@dataclass(frozen=True)
class InstalledEnrollmentProfile:
    identifier: str
    server_url: str
    checkin_url: str
    topic: str
    sign_message: bool
    access_rights: int
    scep_url: str
    scep_challenge: str
    scep_subject: list[list[list[str]]]
    scep_key_size: int
    roots: tuple[x509.Certificate, ...]
    raw: dict[str, Any]

    def ssl_context(self) -> ssl.SSLContext:
        """Trust the profile's root certificates, as the device does once the profile is installed."""
        context = ssl.create_default_context()
        for root in self.roots:
            context.load_verify_locations(cadata=root.public_bytes(Encoding.PEM).decode())
        return context


def read_enrollment_profile(signed: bytes) -> InstalledEnrollmentProfile:
    """Verify a signed `.mobileconfig` (its signer must chain to a root the profile carries) and read it."""
    content, signer = verify_attached(signed)
    profile = plist.loads(content)
    payloads = {p.get("PayloadType"): p for p in profile.get("PayloadContent", []) if isinstance(p, dict)}
    mdm, scep = payloads.get("com.apple.mdm"), payloads.get("com.apple.security.scep")
    if mdm is None or scep is None:
        raise ParseError("not an enrollment profile: com.apple.mdm and com.apple.security.scep payloads required")
    roots = tuple(
        x509.load_der_x509_certificate(p["PayloadContent"])
        for p in profile["PayloadContent"]
        if p.get("PayloadType") == "com.apple.security.root"
    )
    if not any(signer.issuer == root.subject for root in roots):
        raise ParseError("profile signer is not issued by a root the profile carries (unverified profile)")
    if mdm.get("IdentityCertificateUUID") != scep.get("PayloadUUID"):
        raise ParseError("IdentityCertificateUUID does not name the SCEP payload")
    scep_content = scep["PayloadContent"]
    return InstalledEnrollmentProfile(
        identifier=profile["PayloadIdentifier"],
        server_url=mdm["ServerURL"],
        checkin_url=str(mdm.get("CheckInURL") or mdm["ServerURL"]),
        topic=mdm["Topic"],
        sign_message=bool(mdm.get("SignMessage", False)),
        access_rights=int(mdm.get("AccessRights", 0)),
        scep_url=scep_content["URL"],
        scep_challenge=scep_content.get("Challenge", ""),
        scep_subject=scep_content.get("Subject", []),
        scep_key_size=int(scep_content.get("Keysize", 1024)),
        roots=roots,
        raw=profile,
    )
