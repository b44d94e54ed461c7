import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from muster.protocols.apple import plist
from muster.protocols.apple.profiles import EnrollmentProfileSpec, build_enrollment_profile, encode_profile

ROOT_DER = (Path(__file__).parent / "testdata" / "muster-test-root.der").read_bytes()
UUID_FORMAT = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
SPEC = EnrollmentProfileSpec(
    identifier="com.example.mdm.enroll",
    display_name="Example MDM",
    organization="Example Corp",
    description="Enrolls this device in Example MDM",
    server_url="https://mdm.example.com/mdm",
    checkin_url="https://mdm.example.com/checkin",
    topic="com.apple.mgmt.External.9a0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
    scep_url="https://mdm.example.com/scep",
    scep_challenge="one-time-challenge",
    scep_name="Muster CA",
    scep_subject=(("O", "Example Corp"), ("CN", "Example device identity")),
    ca_certificates=(ROOT_DER,),
)


def payloads(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {payload["PayloadType"]: payload for payload in profile["PayloadContent"]}


def test_device_enrollment_profile() -> None:
    profile = build_enrollment_profile(SPEC)
    assert {key: value for key, value in profile.items() if key not in ("PayloadUUID", "PayloadContent")} == {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": "com.example.mdm.enroll",
        "PayloadDisplayName": "Example MDM",
        "PayloadOrganization": "Example Corp",
        "PayloadDescription": "Enrolls this device in Example MDM",
    }
    assert [payload["PayloadType"] for payload in profile["PayloadContent"]] == [
        "com.apple.security.root",
        "com.apple.security.scep",
        "com.apple.mdm",
    ]
    by_type = payloads(profile)
    scep, mdm, root = by_type["com.apple.security.scep"], by_type["com.apple.mdm"], by_type["com.apple.security.root"]
    assert scep["PayloadContent"] == {
        "URL": "https://mdm.example.com/scep",
        "Name": "Muster CA",
        "Challenge": "one-time-challenge",
        "Keysize": 2048,
        "Key Type": "RSA",
        "Key Usage": 5,
        "Subject": [[["O", "Example Corp"]], [["CN", "Example device identity"]]],
    }
    assert mdm["IdentityCertificateUUID"] == scep["PayloadUUID"]
    assert {key: mdm[key] for key in mdm if not key.startswith("Payload") and key != "IdentityCertificateUUID"} == {
        "Topic": "com.apple.mgmt.External.9a0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
        "ServerURL": "https://mdm.example.com/mdm",
        "CheckInURL": "https://mdm.example.com/checkin",
        "SignMessage": True,
        "CheckOutWhenRemoved": True,
        "AccessRights": 8191,
        "ServerCapabilities": ["com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"],
    }
    assert root["PayloadContent"] == ROOT_DER
    assert root["PayloadDisplayName"] == "Muster Test Root"
    assert root["PayloadCertificateFileName"] == "ca-1.cer"
    identifiers = [payload["PayloadIdentifier"] for payload in profile["PayloadContent"]]
    assert identifiers == ["com.example.mdm.enroll.ca.1", "com.example.mdm.enroll.scep", "com.example.mdm.enroll.mdm"]


def test_uuids_are_fresh_unique_and_well_formed() -> None:
    first, second = build_enrollment_profile(SPEC), build_enrollment_profile(SPEC)
    uuids = [profile["PayloadUUID"] for profile in (first, second)]
    uuids += [payload["PayloadUUID"] for profile in (first, second) for payload in profile["PayloadContent"]]
    assert len(set(uuids)) == len(uuids) == 8
    assert all(UUID_FORMAT.match(value) for value in uuids)


def test_encoded_profile_round_trips() -> None:
    profile = build_enrollment_profile(SPEC)
    body = encode_profile(profile)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert plist.loads(body) == profile


def test_optional_parts_are_left_out() -> None:
    spec = dataclasses.replace(
        SPEC, organization=None, description=None, checkin_url=None, scep_name=None, scep_subject=(), ca_certificates=()
    )
    profile = build_enrollment_profile(spec)
    assert "PayloadOrganization" not in profile and "PayloadDescription" not in profile
    by_type = payloads(profile)
    assert set(by_type) == {"com.apple.security.scep", "com.apple.mdm"}
    assert "CheckInURL" not in by_type["com.apple.mdm"]
    assert "Name" not in by_type["com.apple.security.scep"]["PayloadContent"]
    assert "Subject" not in by_type["com.apple.security.scep"]["PayloadContent"]


def test_byod_drops_access_rights() -> None:
    spec = dataclasses.replace(SPEC, enrollment_mode="BYOD", assigned_managed_apple_id="ada@example.com")
    mdm = payloads(build_enrollment_profile(spec))["com.apple.mdm"]
    assert "AccessRights" not in mdm
    assert (mdm["EnrollmentMode"], mdm["AssignedManagedAppleID"]) == ("BYOD", "ada@example.com")


def test_adde_keeps_access_rights() -> None:
    spec = dataclasses.replace(
        SPEC, enrollment_mode="ADDE", assigned_managed_apple_id="ada@example.com", access_rights=1 | 2 | 16
    )
    mdm = payloads(build_enrollment_profile(spec))["com.apple.mdm"]
    assert (mdm["EnrollmentMode"], mdm["AccessRights"]) == ("ADDE", 19)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"topic": "com.example.push"}, "topic must start with 'com.apple.mgmt.'"),
        ({"topic": "com.apple.mgmt."}, "topic must start with"),
        ({"identifier": "enroll"}, "reverse-DNS"),
        ({"server_url": "http://mdm.example.com/mdm"}, "server_url must be a https URL"),
        ({"checkin_url": "mdm.example.com/checkin"}, "checkin_url must be a https URL"),
        ({"scep_url": "ftp://mdm.example.com/scep"}, "scep_url must be a https or http URL"),
        ({"key_size": 3072}, "key_size must be one of"),
        ({"access_rights": 0}, "access_rights must be between 1 and 8191"),
        ({"access_rights": 8192}, "access_rights must be between 1 and 8191"),
        ({"access_rights": 2}, "bit 2 requires bit 1"),
        ({"access_rights": 128 | 1}, "bit 128 requires bit 64"),
        ({"server_capabilities": ("com.apple.mdm.everything",)}, "unknown server capabilities"),
        ({"enrollment_mode": "BYOD"}, "requires assigned_managed_apple_id"),
        ({"enrollment_mode": "Shared"}, "enrollment_mode must be one of"),
        ({"assigned_managed_apple_id": "ada@example.com"}, "only for account-driven enrollment"),
        ({"scep_challenge": ""}, "scep_challenge must be a non-empty string"),
        ({"display_name": " "}, "display_name must be a non-empty string"),
        ({"scep_subject": (("CN",),)}, "scep_subject must be"),
        ({"ca_certificates": (b"",)}, r"ca_certificates\[0\] must be DER bytes"),
        ({"ca_certificates": (ROOT_DER, b"junk")}, r"ca_certificates\[1\] is not a DER X.509 certificate"),
    ],
)
def test_invalid_specs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_enrollment_profile(dataclasses.replace(SPEC, **changes))
