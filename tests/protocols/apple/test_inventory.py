import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import inventory, plist
from muster.protocols.errors import ParseError

TESTDATA = Path(__file__).parent / "testdata"
# `openssl x509 -inform DER -in testdata/muster-test-root.der -noout -fingerprint -sha256 -enddate`
ROOT_SHA256 = "3B:19:9F:21:F0:8F:E9:73:C5:5F:F2:E9:68:FA:4E:72:E8:57:31:27:32:4C:FA:9A:FA:9F:5D:53:76:EF:80:28"
ROOT_NOT_AFTER = datetime(2034, 1, 1, 12, 30, tzinfo=UTC)


def golden(name: str) -> dict[str, Any]:
    return plist.loads((TESTDATA / f"result_{name}.plist").read_bytes())


def test_device_information() -> None:
    info = inventory.parse_device_information(golden("deviceinformation"))
    assert info == inventory.DeviceInformation(
        device_name="Ada's iPhone",
        os_version="18.1",
        build_version="22B83",
        model_name="iPhone",
        model="MQ9X3LL/A",
        model_number="MQ9X3",
        product_name="iPhone15,2",
        serial_number="F2LXK0ABCD12",
        udid="00008030-001A2B3C4D5E6F70",
        imei="35 209900 176148 1",
        meid="35209900176148",
        device_capacity_gb=128.0,
        available_capacity_gb=61.5,
        battery_level=0.87,
        is_supervised=True,
        is_multi_user=False,
        is_activation_lock_enabled=False,
        is_lost_mode_enabled=False,
        is_device_locator_service_enabled=True,
        is_cloud_backup_enabled=True,
        last_cloud_backup_date=datetime(2024, 11, 3, 2, 15, tzinfo=UTC),
        time_zone="Europe/Paris",
        wifi_mac="a4:83:e7:12:34:56",
        bluetooth_mac="a4:83:e7:12:34:57",
        phone_number="+1 555 0100",
        iccid="8901 4104 2123 4567 8901",
        current_carrier_network="Example Mobile",
        is_roaming=False,
    )


def test_device_information_ignores_wrong_types_and_takes_integer_capacity() -> None:
    info = inventory.parse_device_information(
        {"QueryResponses": {"DeviceCapacity": 64, "IsSupervised": 1, "BatteryLevel": True, "OSVersion": 18}}
    )
    assert info == inventory.DeviceInformation(device_capacity_gb=64.0)


def test_security_info_ios() -> None:
    info = inventory.parse_security_info(golden("securityinfo_ios"))
    assert info.hardware_encryption_caps == 3
    assert (info.block_level_encryption, info.file_level_encryption) == (True, True)
    assert (info.passcode_present, info.passcode_compliant, info.passcode_compliant_with_profiles) == (
        True,
        True,
        False,
    )
    assert info.auto_lock_time == 60
    assert (info.enrolled_via_dep, info.user_approved_enrollment, info.is_user_enrollment) == (True, True, False)
    assert info.is_activation_lock_manageable is True
    assert info.filevault_enabled is None
    assert info.is_encrypted is True


@pytest.mark.parametrize(
    ("security_info", "encrypted"),
    [
        ({"HardwareEncryptionCaps": 3, "PasscodePresent": False}, False),
        ({"HardwareEncryptionCaps": 1, "PasscodePresent": True}, False),
        ({"HardwareEncryptionCaps": 3}, None),
        ({"FDE_Enabled": False, "HardwareEncryptionCaps": 3, "PasscodePresent": True}, False),
        ({}, None),
    ],
)
def test_is_encrypted(security_info: dict[str, Any], encrypted: bool | None) -> None:
    assert inventory.parse_security_info({"SecurityInfo": security_info}).is_encrypted is encrypted


def test_security_info_macos() -> None:
    info = inventory.parse_security_info(golden("securityinfo_macos"))
    assert info == inventory.SecurityInfo(
        filevault_enabled=True,
        filevault_has_personal_recovery_key=True,
        filevault_has_institutional_recovery_key=False,
        system_integrity_protection_enabled=True,
        authenticated_root_volume_enabled=True,
        firewall_enabled=True,
        firewall_block_all_incoming=False,
        firewall_stealth_mode=True,
        firmware_password_exists=False,
        recovery_lock_enabled=True,
        secure_boot_level="full",
        external_boot_level="disallowed",
        remote_desktop_enabled=False,
        bootstrap_token_allowed_for_authentication="allowed",
        enrolled_via_dep=False,
        user_approved_enrollment=True,
        is_user_enrollment=False,
    )
    assert info.block_level_encryption is None
    assert info.is_encrypted is True
    assert "secret" not in json.dumps(inventory.to_json(info))


def test_installed_applications() -> None:
    apps = inventory.parse_installed_applications(golden("installedapplicationlist"))
    assert apps == [
        inventory.InstalledApplication(
            identifier="com.apple.Keynote",
            name="Keynote",
            version="7037.0.101",
            short_version="14.2",
            bundle_size=712345678,
            dynamic_size=1234567,
            is_validated=True,
            installing=False,
            app_store_vendable=True,
            device_based_vpp=True,
            beta_app=False,
            has_update_available=False,
            is_app_clip=False,
            external_version_identifier=869112345,
            source="AppStore",
        ),
        inventory.InstalledApplication(identifier="com.example.inhouse", name="In-house", version="42"),
    ]


def test_profile_list() -> None:
    profiles = inventory.parse_profile_list(golden("profilelist"))
    assert profiles == [
        inventory.InstalledProfile(
            identifier="com.example.mdm.enroll",
            uuid="6E1D3C2B-0A9F-4E8D-9C7B-6A5F4E3D2C1B",
            display_name="Example MDM",
            organization="Example Corp",
            description="Enrolls this device",
            is_managed=True,
            payload_types=("com.apple.security.scep", "com.apple.mdm"),
        ),
        inventory.InstalledProfile(
            identifier="com.example.wifi",
            uuid="7F6E5D4C-3B2A-4190-8F7E-6D5C4B3A2918",
            display_name="Office Wi-Fi",
            is_encrypted=True,
            removal_disallowed=True,
        ),
    ]


def test_certificate_list() -> None:
    certificates = inventory.parse_certificate_list(golden("certificatelist"))
    assert certificates == [
        inventory.InstalledCertificate(
            common_name="Muster Test Root",
            is_identity=False,
            sha256_hex=ROOT_SHA256.replace(":", "").lower(),
            not_after=ROOT_NOT_AFTER,
        ),
        inventory.InstalledCertificate(
            common_name="Not really DER",
            is_identity=True,
            sha256_hex="039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81",
            not_after=None,
        ),
    ]


@pytest.mark.parametrize(
    ("parse", "result", "reason"),
    [
        (inventory.parse_device_information, {}, "result has no QueryResponses dictionary"),
        (inventory.parse_security_info, {"SecurityInfo": []}, "result has no SecurityInfo dictionary"),
        (inventory.parse_installed_applications, {}, "result has no InstalledApplicationList array"),
        (inventory.parse_profile_list, {"ProfileList": {}}, "result has no ProfileList array"),
        (inventory.parse_certificate_list, {"CertificateList": "x"}, "result has no CertificateList array"),
    ],
)
def test_structurally_wrong_results(parse: Any, result: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(result)
    assert caught.value.reason == reason


def test_to_json() -> None:
    records: list[Any] = [
        inventory.parse_device_information(golden("deviceinformation")),
        *inventory.parse_profile_list(golden("profilelist")),
        *inventory.parse_certificate_list(golden("certificatelist")),
    ]
    as_json = [inventory.to_json(record) for record in records]
    json.dumps(as_json)  # everything is JSON-serialisable
    assert as_json[0]["last_cloud_backup_date"] == "2024-11-03T02:15:00+00:00"
    assert as_json[0]["device_capacity_gb"] == 128.0
    assert as_json[1]["payload_types"] == ["com.apple.security.scep", "com.apple.mdm"]
    assert as_json[3]["not_after"] == "2034-01-01T12:30:00+00:00"
    with pytest.raises(TypeError):
        inventory.to_json({"not": "a record"})


leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=5))
junk = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner))
INVENTORY_KEYS = [
    "QueryResponses",
    "SecurityInfo",
    "InstalledApplicationList",
    "ProfileList",
    "CertificateList",
    "Identifier",
    "PayloadIdentifier",
    "PayloadUUID",
    "PayloadContent",
    "Data",
    "FirewallSettings",
    "DeviceCapacity",
]
results = st.dictionaries(
    st.sampled_from(INVENTORY_KEYS), junk | st.lists(st.dictionaries(st.sampled_from(INVENTORY_KEYS), junk))
)


@given(results)
def test_parsers_never_raise_anything_but_parse_error(result: dict[str, Any]) -> None:
    for parse in (
        inventory.parse_device_information,
        inventory.parse_security_info,
        inventory.parse_installed_applications,
        inventory.parse_profile_list,
        inventory.parse_certificate_list,
    ):
        try:
            parsed = parse(result)
        except ParseError:
            continue
        for record in parsed if isinstance(parsed, list) else [parsed]:
            json.dumps(inventory.to_json(record))
