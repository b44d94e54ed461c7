"""The unsigned enrollment profile (.mobileconfig) (spec: apple-protocols.md §4; schemas `TopLevel.yaml`,
`com.apple.mdm.yaml`, `com.apple.security.scep.yaml`, `com.apple.security.root.yaml`).

`build_enrollment_profile` returns the profile dictionary: CA certificate payloads first (they must install
before the MDM payload can reach a server whose TLS chain is not publicly trusted), then the SCEP payload that
gives the device its identity, then the MDM payload naming that identity. Signing is done elsewhere (CMS).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from muster.protocols.apple import plist

TOPIC_PREFIX = "com.apple.mgmt."
ALL_ACCESS_RIGHTS = 8191
KEY_SIZES = frozenset({1024, 2048, 4096})
SERVER_CAPABILITIES = frozenset(
    {"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken", "com.apple.mdm.token"}
)
ENROLLMENT_MODES = frozenset({"BYOD", "ADDE"})
SCEP_KEY_USAGE_SIGN_AND_ENCRYPT = 5
_REVERSE_DNS = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# Access-right bits that need another bit (§2.5): install/remove profiles needs inspection (2 -> 1), install
# provisioning profiles needs provisioning inspection (128 -> 64).
_RIGHT_DEPENDENCIES = ((2, 1), (128, 64))


@dataclass(frozen=True, kw_only=True)
class EnrollmentProfileSpec:
    """Everything that varies between enrollment profiles.

    `scep_subject` pairs (name or dotted OID, value) become Apple's nested arrays, one RDN per pair.
    `enrollment_mode` is None for profile-based/ADE enrollment, "BYOD" or "ADDE" for account-driven
    enrollment (both need `assigned_managed_apple_id`; BYOD also drops AccessRights).
    """

    identifier: str
    display_name: str
    server_url: str
    topic: str
    scep_url: str
    scep_challenge: str
    organization: str | None = None
    description: str | None = None
    checkin_url: str | None = None
    scep_name: str | None = None
    scep_subject: Sequence[tuple[str, str]] = (("CN", "Muster device identity"),)
    key_size: int = 2048
    ca_certificates: Sequence[bytes] = ()
    access_rights: int = ALL_ACCESS_RIGHTS
    sign_message: bool = True
    check_out_when_removed: bool = True
    server_capabilities: Sequence[str] = (
        "com.apple.mdm.per-user-connections",
        "com.apple.mdm.bootstraptoken",
    )
    enrollment_mode: str | None = None
    assigned_managed_apple_id: str | None = None


def build_enrollment_profile(spec: EnrollmentProfileSpec) -> dict[str, Any]:
    """The enrollment profile as a plist-ready dict, with fresh PayloadUUIDs on every call."""
    _validate(spec)
    roots = [_root_payload(spec, index, der) for index, der in enumerate(spec.ca_certificates, start=1)]
    scep = _scep_payload(spec)
    mdm = _mdm_payload(spec, identity_uuid=scep["PayloadUUID"])
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": spec.identifier,
        "PayloadUUID": _new_uuid(),
        "PayloadDisplayName": spec.display_name,
        "PayloadContent": [*roots, scep, mdm],
    }
    if spec.organization:
        profile["PayloadOrganization"] = spec.organization
    if spec.description:
        profile["PayloadDescription"] = spec.description
    return profile


def encode_profile(profile: dict[str, Any]) -> bytes:
    """The profile as XML plist bytes (what gets signed and served as application/x-apple-aspen-config)."""
    return plist.dumps(profile)


def _new_uuid() -> str:
    return str(uuid.uuid4()).upper()


def _payload(spec: EnrollmentProfileSpec, payload_type: str, suffix: str, display_name: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{spec.identifier}.{suffix}",
        "PayloadUUID": _new_uuid(),
        "PayloadDisplayName": display_name,
    }
    if spec.organization:
        payload["PayloadOrganization"] = spec.organization
    return payload


def _root_payload(spec: EnrollmentProfileSpec, index: int, der: bytes) -> dict[str, Any]:
    payload = _payload(spec, "com.apple.security.root", f"ca.{index}", _certificate_name(der, index))
    payload["PayloadContent"] = der
    payload["PayloadCertificateFileName"] = f"ca-{index}.cer"
    return payload


def _certificate_name(der: bytes, index: int) -> str:
    try:
        names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        raise ValueError(f"ca_certificates[{index - 1}] is not a DER X.509 certificate") from None
    common_name = names[0].value if names else None
    return common_name if isinstance(common_name, str) and common_name else f"CA certificate {index}"


def _scep_payload(spec: EnrollmentProfileSpec) -> dict[str, Any]:
    content: dict[str, Any] = {
        "URL": spec.scep_url,
        "Challenge": spec.scep_challenge,
        "Keysize": spec.key_size,
        "Key Type": "RSA",
        "Key Usage": SCEP_KEY_USAGE_SIGN_AND_ENCRYPT,
    }
    if spec.scep_name:
        content["Name"] = spec.scep_name
    if spec.scep_subject:
        content["Subject"] = [[[name, value]] for name, value in spec.scep_subject]
    payload = _payload(spec, "com.apple.security.scep", "scep", "Device identity")
    payload["PayloadContent"] = content
    return payload


def _mdm_payload(spec: EnrollmentProfileSpec, *, identity_uuid: str) -> dict[str, Any]:
    payload = _payload(spec, "com.apple.mdm", "mdm", "Device management")
    payload.update(
        {
            "IdentityCertificateUUID": identity_uuid,
            "Topic": spec.topic,
            "ServerURL": spec.server_url,
            "SignMessage": spec.sign_message,
            "CheckOutWhenRemoved": spec.check_out_when_removed,
            "ServerCapabilities": list(spec.server_capabilities),
        }
    )
    if spec.checkin_url:
        payload["CheckInURL"] = spec.checkin_url
    # Account-driven user enrollment (BYOD) must not carry AccessRights at all.
    if spec.enrollment_mode != "BYOD":
        payload["AccessRights"] = spec.access_rights
    if spec.enrollment_mode:
        payload["EnrollmentMode"] = spec.enrollment_mode
        payload["AssignedManagedAppleID"] = spec.assigned_managed_apple_id
    return payload


def _validate(spec: EnrollmentProfileSpec) -> None:
    if not _REVERSE_DNS.match(spec.identifier):
        raise ValueError("identifier must be reverse-DNS, like com.example.mdm.enroll")
    _require_text("display_name", spec.display_name)
    _require_text("scep_challenge", spec.scep_challenge)
    if not spec.topic.startswith(TOPIC_PREFIX) or len(spec.topic) == len(TOPIC_PREFIX):
        raise ValueError(f"topic must start with {TOPIC_PREFIX!r} (the push certificate's topic)")
    _require_url("server_url", spec.server_url, ("https://",))
    if spec.checkin_url is not None:
        _require_url("checkin_url", spec.checkin_url, ("https://",))
    _require_url("scep_url", spec.scep_url, ("https://", "http://"))
    if spec.key_size not in KEY_SIZES:
        raise ValueError(f"key_size must be one of {sorted(KEY_SIZES)}")
    _validate_subject(spec.scep_subject)
    _validate_access_rights(spec.access_rights)
    unknown = set(spec.server_capabilities) - SERVER_CAPABILITIES
    if unknown:
        raise ValueError(f"unknown server capabilities: {', '.join(sorted(unknown))}")
    _validate_enrollment_mode(spec)
    for index, der in enumerate(spec.ca_certificates):
        if not isinstance(der, bytes) or not der:
            raise ValueError(f"ca_certificates[{index}] must be DER bytes")


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")


def _require_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    if not any(value.lower().startswith(scheme) and len(value) > len(scheme) for scheme in schemes):
        raise ValueError(f"{name} must be a {' or '.join(s.rstrip(':/') for s in schemes)} URL")


def _validate_subject(subject: Sequence[tuple[str, str]]) -> None:
    for pair in subject:
        if len(pair) != 2 or not all(isinstance(part, str) and part for part in pair):
            raise ValueError("scep_subject must be (name or OID, value) pairs of non-empty strings")


def _validate_access_rights(rights: int) -> None:
    if isinstance(rights, bool) or not isinstance(rights, int) or not 1 <= rights <= ALL_ACCESS_RIGHTS:
        raise ValueError(f"access_rights must be between 1 and {ALL_ACCESS_RIGHTS}")
    for bit, needs in _RIGHT_DEPENDENCIES:
        if rights & bit and not rights & needs:
            raise ValueError(f"access_rights bit {bit} requires bit {needs}")


def _validate_enrollment_mode(spec: EnrollmentProfileSpec) -> None:
    if spec.enrollment_mode is None:
        if spec.assigned_managed_apple_id is not None:
            raise ValueError("assigned_managed_apple_id is only for account-driven enrollment (enrollment_mode)")
        return
    if spec.enrollment_mode not in ENROLLMENT_MODES:
        raise ValueError(f"enrollment_mode must be one of {sorted(ENROLLMENT_MODES)} or None")
    if not spec.assigned_managed_apple_id:
        raise ValueError(f"enrollment_mode {spec.enrollment_mode} requires assigned_managed_apple_id")
