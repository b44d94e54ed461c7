from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import commands, plist
from muster.protocols.errors import ParseError

UUID = "9F09D114-2C5E-4B6A-8D7F-0A1B2C3D4E5F"


def test_device_information_defaults_cover_the_inventory() -> None:
    command = commands.device_information()
    assert command["RequestType"] == "DeviceInformation"
    for query in ("DeviceName", "OSVersion", "SerialNumber", "UDID", "IMEI", "WiFiMAC", "IsSupervised"):
        assert query in command["Queries"]
    assert set(commands.DEFAULT_DEVICE_QUERIES) <= commands.KNOWN_DEVICE_QUERIES
    assert "DeviceAttestationNonce" not in command


def test_device_information_with_attestation() -> None:
    command = commands.device_information(
        ["DevicePropertiesAttestation", "SerialNumber", "SerialNumber"], device_attestation_nonce=b"n" * 32
    )
    assert command == {
        "RequestType": "DeviceInformation",
        "Queries": ["DevicePropertiesAttestation", "SerialNumber"],
        "DeviceAttestationNonce": b"n" * 32,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queries": []}, "queries must not be empty"),
        ({"queries": "DeviceName"}, "queries must be a list of strings"),
        ({"queries": ["DeviceName", "Serial"]}, "unknown DeviceInformation queries: Serial"),
        ({"queries": ["DeviceName", 3]}, "queries item must be a non-empty string"),
        (
            {"queries": ["DevicePropertiesAttestation"], "device_attestation_nonce": b"n" * 33},
            "at most 32 bytes",
        ),
        (
            {"queries": ["DeviceName"], "device_attestation_nonce": b"n"},
            "needs the DevicePropertiesAttestation",
        ),
    ],
)
def test_device_information_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.device_information(**kwargs)


def test_simple_commands() -> None:
    assert commands.security_info() == {"RequestType": "SecurityInfo"}
    assert commands.shut_down_device() == {"RequestType": "ShutDownDevice"}
    assert commands.device_configured() == {"RequestType": "DeviceConfigured"}
    assert commands.disable_lost_mode() == {"RequestType": "DisableLostMode"}
    assert commands.restart_device() == {"RequestType": "RestartDevice"}
    assert commands.restart_device(notify_user=True) == {"RequestType": "RestartDevice", "NotifyUser": True}


def test_list_commands() -> None:
    assert commands.profile_list() == {"RequestType": "ProfileList"}
    assert commands.profile_list(managed_only=True) == {"RequestType": "ProfileList", "ManagedOnly": True}
    assert commands.certificate_list(managed_only=True) == {
        "RequestType": "CertificateList",
        "ManagedOnly": True,
    }
    assert commands.installed_application_list(managed_only=True, identifiers=("com.a", "com.b")) == {
        "RequestType": "InstalledApplicationList",
        "ManagedAppsOnly": True,
        "Identifiers": ["com.a", "com.b"],
    }
    with pytest.raises(ValueError, match="managed_only must be true or false"):
        commands.profile_list(managed_only="yes")  # type: ignore[arg-type]


def test_profile_commands() -> None:
    assert commands.install_profile(b"<plist/>") == {"RequestType": "InstallProfile", "Payload": b"<plist/>"}
    assert commands.remove_profile("com.example.wifi") == {
        "RequestType": "RemoveProfile",
        "Identifier": "com.example.wifi",
    }
    with pytest.raises(ValueError, match="payload must be non-empty bytes"):
        commands.install_profile(b"")
    with pytest.raises(ValueError, match="identifier must be a non-empty string"):
        commands.remove_profile("  ")


def test_device_lock() -> None:
    assert commands.device_lock(message="Call IT", phone_number="+1 555 0100", pin="123456") == {
        "RequestType": "DeviceLock",
        "Message": "Call IT",
        "PhoneNumber": "+1 555 0100",
        "PIN": "123456",
    }
    assert commands.device_lock() == {"RequestType": "DeviceLock"}
    for pin in ("12345", "1234567", "12345a", "١٢٣٤٥٦"):
        with pytest.raises(ValueError, match="six digits"):
            commands.device_lock(pin=pin)
    with pytest.raises(ValueError, match="character a plist cannot carry"):
        commands.device_lock(message="bell\x07")
    with pytest.raises(ValueError, match="character a plist cannot carry"):
        commands.device_lock(message="not XML \uffff")
    assert commands.device_lock(message="line 1\r\nline 2\r")["Message"] == "line 1\nline 2\n"


def test_erase_device() -> None:
    command = commands.erase_device(
        pin="654321",
        preserve_data_plan=True,
        disallow_proximity_setup=False,
        obliteration_behavior="DoNotObliterate",
        return_to_service={"Enabled": True, "WiFiProfileData": b"wifi", "MDMProfileData": None},
    )
    assert command == {
        "RequestType": "EraseDevice",
        "PIN": "654321",
        "PreserveDataPlan": True,
        "DisallowProximitySetup": False,
        "ObliterationBehavior": "DoNotObliterate",
        "ReturnToService": {"Enabled": True, "WiFiProfileData": b"wifi"},
    }
    assert commands.erase_device() == {"RequestType": "EraseDevice"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"obliteration_behavior": "Sometimes"}, "obliteration_behavior must be one of"),
        ({"return_to_service": {"WiFiProfileData": b"w"}}, "return_to_service needs Enabled"),
        ({"return_to_service": {"Enabled": 1}}, "return_to_service Enabled must be true or false"),
        ({"return_to_service": {"Enabled": True, "Extra": 1}}, "unknown keys: Extra"),
        (
            {"return_to_service": {"Enabled": True, "MDMProfileData": "text"}},
            "MDMProfileData must be non-empty",
        ),
        ({"preserve_data_plan": "no"}, "preserve_data_plan must be true or false"),
    ],
)
def test_erase_device_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.erase_device(**kwargs)


def test_clear_passcode_and_device_name() -> None:
    assert commands.clear_passcode(b"\x01unlock") == {
        "RequestType": "ClearPasscode",
        "UnlockToken": b"\x01unlock",
    }
    assert commands.settings_device_name("Front desk iPad") == {
        "RequestType": "Settings",
        "Settings": [{"Item": "DeviceName", "DeviceName": "Front desk iPad"}],
    }
    with pytest.raises(ValueError, match="unlock_token"):
        commands.clear_passcode("token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        commands.settings_device_name("")


def test_install_application_sources() -> None:
    assert commands.install_application(itunes_store_id=361309726, purchase_method=1, management_flags=5) == {
        "RequestType": "InstallApplication",
        "iTunesStoreID": 361309726,
        "Options": {"PurchaseMethod": 1},
        "ManagementFlags": 5,
    }
    assert commands.install_application(
        identifier="com.apple.Keynote",
        install_as_managed=True,
        change_management_state="Managed",
        configuration={"ServerURL": "https://example.com", "Retries": 3},
    ) == {
        "RequestType": "InstallApplication",
        "Identifier": "com.apple.Keynote",
        "InstallAsManaged": True,
        "ChangeManagementState": "Managed",
        "Configuration": {"ServerURL": "https://example.com", "Retries": 3},
    }
    assert commands.install_application(manifest_url="https://apps.example.com/app.plist")["ManifestURL"] == (
        "https://apps.example.com/app.plist"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"itunes_store_id": 1, "identifier": "com.a"}, "exactly one of"),
        ({"itunes_store_id": 0}, "itunes_store_id must be a positive integer"),
        ({"itunes_store_id": True}, "itunes_store_id must be a positive integer"),
        ({"manifest_url": "http://apps.example.com/app.plist"}, "https:// URL"),
        ({"identifier": "com.a", "management_flags": 2}, "management_flags must be one of"),
        ({"identifier": "com.a", "management_flags": 1.0}, "management_flags must be one of"),
        ({"identifier": "com.a", "purchase_method": 2}, "purchase_method must be one of"),
        ({"identifier": "com.a", "purchase_method": True}, "purchase_method must be one of"),
        ({"identifier": "com.a", "change_management_state": "Unmanaged"}, "change_management_state"),
        ({"identifier": "com.a", "configuration": {"k": None}}, "configuration cannot be sent in a plist"),
        ({"identifier": "com.a", "configuration": {1: "v"}}, "configuration must be a dictionary"),
        ({"identifier": "com.a", "configuration": {"k": "\uffff"}}, "configuration cannot be sent"),
        ({"identifier": "com.a", "configuration": {"k": float("nan")}}, "does not survive"),
    ],
)
def test_install_application_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.install_application(**kwargs)


def test_application_and_lost_mode_commands() -> None:
    assert commands.remove_application("com.example.app") == {
        "RequestType": "RemoveApplication",
        "Identifier": "com.example.app",
    }
    assert commands.enable_lost_mode(phone_number="+1 555 0100", footnote="Reward") == {
        "RequestType": "EnableLostMode",
        "PhoneNumber": "+1 555 0100",
        "Footnote": "Reward",
    }
    with pytest.raises(ValueError, match="message or a phone_number"):
        commands.enable_lost_mode(footnote="only a footnote")


def test_user_enrollment_forbidden_set() -> None:
    forbidden = commands.USER_ENROLLMENT_FORBIDDEN
    assert {
        "EraseDevice",
        "DeviceConfigured",
        "ClearPasscode",
        "EnableLostMode",
        "RestartDevice",
    } <= forbidden
    assert not {"DeviceInformation", "InstallProfile", "DeviceLock", "InstallApplication"} & forbidden


def test_command_envelope() -> None:
    body = commands.encode_command(UUID, commands.device_lock(message="hi"))
    assert plist.loads(body) == {
        "CommandUUID": UUID,
        "Command": {"RequestType": "DeviceLock", "Message": "hi"},
    }
    assert commands.decode_command(body) == (UUID, {"RequestType": "DeviceLock", "Message": "hi"})
    with pytest.raises(ValueError, match="RequestType"):
        commands.encode_command(UUID, {"Message": "no type"})
    with pytest.raises(ValueError, match="command_uuid"):
        commands.encode_command("", commands.security_info())


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"Command": {"RequestType": "SecurityInfo"}}, "missing CommandUUID"),
        ({"CommandUUID": UUID}, "Command must be a dictionary"),
        ({"CommandUUID": UUID, "Command": {"Queries": []}}, "missing RequestType"),
    ],
)
def test_decode_command_rejects(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        commands.decode_command(plist.dumps(message))
    assert caught.value.reason == reason


texts = st.text(min_size=1, max_size=30)


@given(st.uuids().map(str), texts, st.one_of(st.none(), texts), st.binary(min_size=1, max_size=50))
def test_command_round_trip(command_uuid: str, message: str, footnote: str | None, payload: bytes) -> None:
    """Any text is either refused with ValueError or survives the trip to the device unchanged."""
    builders = (
        lambda: commands.enable_lost_mode(message=message, footnote=footnote),
        lambda: commands.install_profile(payload),
        lambda: commands.settings_device_name(message),
        lambda: commands.install_application(identifier="com.a", configuration={message: footnote or payload}),
    )
    for build in builders:
        try:
            command = build()
        except ValueError:
            continue
        assert commands.decode_command(commands.encode_command(command_uuid, command)) == (
            command_uuid,
            command,
        )
