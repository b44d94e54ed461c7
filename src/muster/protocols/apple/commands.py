"""MDM command builders and the command envelope (spec: apple-protocols.md §2.2, §2.4, §2.6).

Each builder returns the `Command` dictionary (with `RequestType`) for one request type, checked against
Apple's schema (`mdm/commands/*.yaml`): required keys, types, enumerations and documented ranges. Arguments
come from administrators, so bad ones raise `ValueError` with a message fit to show them. Optional keys are
emitted only when set, leaving the device's documented defaults in force.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from muster.protocols.apple import plist
from muster.protocols.apple.plist import required_string
from muster.protocols.errors import ParseError

T = TypeVar("T")

# iOS 18.1 schema query names (information.device.yaml); unknown names would be ignored by the device, so a
# name outside this set is almost certainly a typo.
_QUERY_NAMES = """UDID ProvisioningUDID OrganizationInfo MDMOptions LastCloudBackupDate AwaitingConfiguration
    iTunesStoreAccountIsActive iTunesStoreAccountHash DeviceName OSVersion SupplementalOSVersionExtra
    BuildVersion SupplementalBuildVersion ModelName Model ModelNumber IsAppleSilicon ProductName
    SerialNumber DeviceCapacity AvailableDeviceCapacity IMEI MEID ModemFirmwareVersion
    CellularTechnology BatteryLevel HasBattery IsSupervised IsMultiUser IsDeviceLocatorServiceEnabled
    IsActivationLockEnabled IsActivationLockSupported IsDoNotDisturbInEffect DeviceID
    EASDeviceIdentifier IsCloudBackupEnabled ActiveManagedUsers OSUpdateSettings LocalHostName HostName
    AutoSetupAdminAccounts SystemIntegrityProtectionEnabled SupportsLOMDevice IsMDMLostModeEnabled
    MaximumResidentUsers EstimatedResidentUsers QuotaSize ResidentUsers UserSessionTimeout
    TemporarySessionTimeout TemporarySessionOnly ManagedAppleIDDefaultDomains
    OnlineAuthenticationGracePeriod SkipLanguageAndLocaleSetupForNewUsers PushToken
    DiagnosticSubmissionEnabled AppAnalyticsEnabled TimeZone ICCID BluetoothMAC WiFiMAC EthernetMAC
    CurrentCarrierNetwork SIMCarrierNetwork SubscriberCarrierNetwork CarrierSettingsVersion PhoneNumber
    DataRoamingEnabled VoiceRoamingEnabled PersonalHotspotEnabled IsNetworkTethered IsRoaming
    SubscriberMCC SubscriberMNC CurrentMCC CurrentMNC ServiceSubscriptions PINRequiredForEraseDevice
    PINRequiredForDeviceLock SupportsiOSAppInstalls SoftwareUpdateDeviceID SoftwareUpdateSettings
    AccessibilitySettings DevicePropertiesAttestation EACSPreflight"""
KNOWN_DEVICE_QUERIES = frozenset(_QUERY_NAMES.split())

DEFAULT_DEVICE_QUERIES: tuple[str, ...] = (
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "SupplementalBuildVersion",
    "ModelName",
    "Model",
    "ModelNumber",
    "ProductName",
    "SerialNumber",
    "UDID",
    "IMEI",
    "MEID",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "IsSupervised",
    "IsMultiUser",
    "IsActivationLockEnabled",
    "IsMDMLostModeEnabled",
    "IsDeviceLocatorServiceEnabled",
    "IsCloudBackupEnabled",
    "LastCloudBackupDate",
    "IsAppleSilicon",
    "SystemIntegrityProtectionEnabled",
    "TimeZone",
    "HostName",
    "LocalHostName",
    "WiFiMAC",
    "BluetoothMAC",
    "EthernetMAC",
    "PhoneNumber",
    "ICCID",
    "CurrentCarrierNetwork",
    "IsRoaming",
)

# RequestTypes whose iOS schema says `userenrollment: forbidden` (§2.6).
USER_ENROLLMENT_FORBIDDEN = frozenset(
    {
        "ActivationLockBypassCode",
        "ApplyRedemptionCode",
        "AvailableOSUpdates",
        "ClearActivationLockBypassCode",
        "ClearPasscode",
        "ClearRestrictionsPassword",
        "DeleteUser",
        "DeviceConfigured",
        "DeviceLocation",
        "DisableLostMode",
        "EnableLostMode",
        "EraseDevice",
        "InviteToProgram",
        "LogOutUser",
        "OSUpdateStatus",
        "PlayLostModeSound",
        "RefreshCellularPlans",
        "RequestUnlockToken",
        "RestartDevice",
        "Restrictions",
        "ScheduleOSUpdate",
        "ShutDownDevice",
        "StopMirroring",
        "UserConfigured",
        "UserList",
    }
)

OBLITERATION_BEHAVIORS = frozenset({"Default", "DoNotObliterate", "ObliterateWithWarning", "Always"})
MANAGEMENT_FLAGS = frozenset({1, 4, 5})
PURCHASE_METHODS = frozenset({0, 1})
MAX_ATTESTATION_NONCE_BYTES = 32
MIN_SESSION_TIMEOUT = 30  # seconds; Shared iPad session timeouts below this are refused
_RETURN_TO_SERVICE_DATA_KEYS = ("WiFiProfileData", "MDMProfileData")


# --- argument checks: each takes (name, value) and returns the value to emit -----------------------------


def _is_xml_char(char: str) -> bool:
    """XML 1.0 `Char`: no control characters but tab/newlines, no surrogates, no U+FFFE/U+FFFF."""
    code = ord(char)
    return (code >= 0x20 or char in "\t\n\r") and not 0xD800 <= code <= 0xDFFF and code not in (0xFFFE, 0xFFFF)


def _text(name: str, value: object) -> str:
    """A non-empty string that an XML plist can carry; CR/CRLF become LF, as the device's parser would do."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if not all(_is_xml_char(char) for char in value):
        raise ValueError(f"{name} contains a character a plist cannot carry (control character, U+FFFE/U+FFFF)")
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _data(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or not value:
        raise ValueError(f"{name} must be non-empty bytes")
    return value


def _one_of(allowed: frozenset[Any]) -> Callable[[str, object], Any]:
    def check(name: str, value: object) -> Any:
        # Compare types too: 1.0 == 1 and True == 1, but neither is the plist integer the schema asks for.
        if not any(type(value) is type(option) and value == option for option in allowed):
            raise ValueError(f"{name} must be one of {sorted(allowed)}, not {value!r}")
        return value

    return check


def _strings(name: str, values: object) -> list[str]:
    # A bare string is a Sequence[str] too; iterating it letter by letter is never what the caller meant.
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of strings")
    return [_text(f"{name} item", value) for value in values]


def _find_my_pin(name: str, value: object) -> str:
    pin = _text(name, value)
    if len(pin) != 6 or not (pin.isascii() and pin.isdigit()):
        raise ValueError(f"{name} must be six digits (the Find My PIN)")
    return pin


def _https_url(name: str, value: object) -> str:
    url = _text(name, value)
    if not url.lower().startswith("https://") or len(url) <= len("https://"):
        raise ValueError(f"{name} must be an https:// URL")
    return url


def _store_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _purchase_options(name: str, value: object) -> dict[str, int]:
    return {"PurchaseMethod": _one_of(PURCHASE_METHODS)(name, value)}


def _configuration(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} must be a dictionary with string keys")
    result = dict(value)
    try:
        # Fail now, with a clear message, rather than on the device: a value plistlib can write may still be
        # unreadable (U+FFFF) or read back differently (a carriage return, NaN), so read it back and compare.
        survives = plist.loads(plist.dumps(result)) == result
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} cannot be sent in a plist: {exc}") from None
    if not survives:
        raise ValueError(f"{name} does not survive plist encoding unchanged (carriage return or NaN?)")
    return result


def _return_to_service(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dictionary")
    unknown = set(value) - {"Enabled", *_RETURN_TO_SERVICE_DATA_KEYS}
    if unknown:
        raise ValueError(f"{name} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    if "Enabled" not in value:
        raise ValueError(f"{name} needs Enabled")
    result: dict[str, Any] = {"Enabled": _flag(f"{name} Enabled", value["Enabled"])}
    for key in _RETURN_TO_SERVICE_DATA_KEYS:
        result[key] = _maybe(_data, f"{name} {key}", value.get(key))
    return {key: item for key, item in result.items() if item is not None}


def _maybe(check: Callable[[str, Any], T], name: str, value: object) -> T | None:
    """Apply `check` unless the optional argument was left out."""
    return None if value is None else check(name, value)


def _only_if_true(name: str, value: object) -> bool | None:
    """Boolean options whose schema default is false are sent only when true."""
    return True if _flag(name, value) else None


def _command(request_type: str, **keys: Any) -> dict[str, Any]:
    """The command dictionary, leaving out keys whose value is None."""
    return {"RequestType": request_type, **{key: value for key, value in keys.items() if value is not None}}


# --- builders ------------------------------------------------------------------------------------------


def device_information(
    queries: Sequence[str] = DEFAULT_DEVICE_QUERIES, *, device_attestation_nonce: bytes | None = None
) -> dict[str, Any]:
    """DeviceInformation; a nonce (at most 32 bytes) requires the DevicePropertiesAttestation query."""
    names = list(dict.fromkeys(_strings("queries", queries)))
    if not names:
        raise ValueError("queries must not be empty")
    unknown = [name for name in names if name not in KNOWN_DEVICE_QUERIES]
    if unknown:
        raise ValueError(f"unknown DeviceInformation queries: {', '.join(unknown)}")
    nonce = _maybe(_data, "device_attestation_nonce", device_attestation_nonce)
    if nonce is not None:
        if len(nonce) > MAX_ATTESTATION_NONCE_BYTES:
            raise ValueError(f"device_attestation_nonce must be at most {MAX_ATTESTATION_NONCE_BYTES} bytes")
        if "DevicePropertiesAttestation" not in names:
            raise ValueError("device_attestation_nonce needs the DevicePropertiesAttestation query")
    return _command("DeviceInformation", Queries=names, DeviceAttestationNonce=nonce)


def security_info() -> dict[str, Any]:
    """SecurityInfo."""
    return _command("SecurityInfo")


def installed_application_list(
    *, managed_only: bool = False, identifiers: Sequence[str] | None = None
) -> dict[str, Any]:
    """InstalledApplicationList, optionally limited to managed apps and/or some bundle identifiers."""
    return _command(
        "InstalledApplicationList",
        ManagedAppsOnly=_only_if_true("managed_only", managed_only),
        Identifiers=_maybe(_strings, "identifiers", identifiers),
    )


def profile_list(*, managed_only: bool = False) -> dict[str, Any]:
    """ProfileList."""
    return _command("ProfileList", ManagedOnly=_only_if_true("managed_only", managed_only))


def certificate_list(*, managed_only: bool = False) -> dict[str, Any]:
    """CertificateList."""
    return _command("CertificateList", ManagedOnly=_only_if_true("managed_only", managed_only))


def install_profile(payload: bytes) -> dict[str, Any]:
    """InstallProfile with the raw .mobileconfig bytes (plain, signed and/or encrypted)."""
    return _command("InstallProfile", Payload=_data("payload", payload))


def remove_profile(identifier: str) -> dict[str, Any]:
    """RemoveProfile by the profile's top-level PayloadIdentifier."""
    return _command("RemoveProfile", Identifier=_text("identifier", identifier))


def device_lock(
    *, message: str | None = None, phone_number: str | None = None, pin: str | None = None
) -> dict[str, Any]:
    """DeviceLock; `pin` is the macOS six-digit Find My PIN."""
    return _command(
        "DeviceLock",
        Message=_maybe(_text, "message", message),
        PhoneNumber=_maybe(_text, "phone_number", phone_number),
        PIN=_maybe(_find_my_pin, "pin", pin),
    )


def erase_device(
    *,
    pin: str | None = None,
    preserve_data_plan: bool | None = None,
    disallow_proximity_setup: bool | None = None,
    obliteration_behavior: str | None = None,
    return_to_service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """EraseDevice. `return_to_service` uses Apple's keys: `{Enabled, WiFiProfileData?, MDMProfileData?}`."""
    return _command(
        "EraseDevice",
        PIN=_maybe(_find_my_pin, "pin", pin),
        PreserveDataPlan=_maybe(_flag, "preserve_data_plan", preserve_data_plan),
        DisallowProximitySetup=_maybe(_flag, "disallow_proximity_setup", disallow_proximity_setup),
        ObliterationBehavior=_maybe(_one_of(OBLITERATION_BEHAVIORS), "obliteration_behavior", obliteration_behavior),
        ReturnToService=_maybe(_return_to_service, "return_to_service", return_to_service),
    )


def restart_device(*, notify_user: bool | None = None) -> dict[str, Any]:
    """RestartDevice; `notify_user` asks macOS to let the user save work first."""
    return _command("RestartDevice", NotifyUser=_maybe(_flag, "notify_user", notify_user))


def shut_down_device() -> dict[str, Any]:
    """ShutDownDevice."""
    return _command("ShutDownDevice")


def clear_passcode(unlock_token: bytes) -> dict[str, Any]:
    """ClearPasscode with the UnlockToken the device sent in TokenUpdate."""
    return _command("ClearPasscode", UnlockToken=_data("unlock_token", unlock_token))


def settings_device_name(name: str) -> dict[str, Any]:
    """Settings with one DeviceName item (supervised devices)."""
    return _command("Settings", Settings=[{"Item": "DeviceName", "DeviceName": _text("name", name)}])


def _seconds(name: str, value: object) -> int:
    """A Shared iPad session timeout: 0 removes it, otherwise at least 30 seconds (settings.yaml)."""
    if isinstance(value, bool) or not isinstance(value, int) or (value != 0 and value < MIN_SESSION_TIMEOUT):
        raise ValueError(f"{name} must be 0 (no timeout) or at least {MIN_SESSION_TIMEOUT} seconds")
    return value


def settings_shared_device_configuration(
    *,
    resident_users: int | None = None,
    temporary_session_only: bool = False,
    temporary_session_timeout: int | None = None,
    user_session_timeout: int | None = None,
) -> dict[str, Any]:
    """Settings with one SharedDeviceConfiguration item (Shared iPad, iPadOS 13.4; the timeouts and
    TemporarySessionOnly 14.5). ResidentUsers of None or 0 is left out: the iPad decides from its storage."""
    if resident_users is not None and (isinstance(resident_users, bool) or not isinstance(resident_users, int)):
        raise ValueError("resident_users must be an integer")
    item = {
        "Item": "SharedDeviceConfiguration",
        "ResidentUsers": resident_users or None,
        "TemporarySessionOnly": _flag("temporary_session_only", temporary_session_only),
        "TemporarySessionTimeout": _maybe(_seconds, "temporary_session_timeout", temporary_session_timeout),
        "UserSessionTimeout": _maybe(_seconds, "user_session_timeout", user_session_timeout),
    }
    return _command("Settings", Settings=[{key: value for key, value in item.items() if value is not None}])


def user_list() -> dict[str, Any]:
    """UserList: the users a Shared iPad (or a Mac) holds."""
    return _command("UserList")


def log_out_user() -> dict[str, Any]:
    """LogOutUser: ends the active user's session on a Shared iPad."""
    return _command("LogOutUser")


def delete_user(user_name: str, *, force_deletion: bool = False) -> dict[str, Any]:
    """DeleteUser; without ForceDeletion the device refuses a user whose data is still syncing."""
    return _command(
        "DeleteUser",
        UserName=_text("user_name", user_name),
        ForceDeletion=_only_if_true("force_deletion", force_deletion),
    )


def device_configured() -> dict[str, Any]:
    """DeviceConfigured: releases a device waiting in Setup Assistant (AwaitingConfiguration)."""
    return _command("DeviceConfigured")


def install_application(
    *,
    itunes_store_id: int | None = None,
    identifier: str | None = None,
    manifest_url: str | None = None,
    management_flags: int | None = None,
    purchase_method: int | None = None,
    install_as_managed: bool | None = None,
    change_management_state: str | None = None,
    configuration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """InstallApplication from exactly one source: an App Store id, a bundle id or an https manifest URL."""
    sources = [source for source in (itunes_store_id, identifier, manifest_url) if source is not None]
    if len(sources) != 1:
        raise ValueError("give exactly one of itunes_store_id, identifier or manifest_url")
    return _command(
        "InstallApplication",
        iTunesStoreID=_maybe(_store_id, "itunes_store_id", itunes_store_id),
        Identifier=_maybe(_text, "identifier", identifier),
        ManifestURL=_maybe(_https_url, "manifest_url", manifest_url),
        ManagementFlags=_maybe(_one_of(MANAGEMENT_FLAGS), "management_flags", management_flags),
        Options=_maybe(_purchase_options, "purchase_method", purchase_method),
        InstallAsManaged=_maybe(_flag, "install_as_managed", install_as_managed),
        ChangeManagementState=_maybe(
            _one_of(frozenset({"Managed"})), "change_management_state", change_management_state
        ),
        Configuration=_maybe(_configuration, "configuration", configuration),
    )


def remove_application(identifier: str) -> dict[str, Any]:
    """RemoveApplication by bundle identifier."""
    return _command("RemoveApplication", Identifier=_text("identifier", identifier))


def enable_lost_mode(
    *, message: str | None = None, phone_number: str | None = None, footnote: str | None = None
) -> dict[str, Any]:
    """EnableLostMode; Apple requires a message or a phone number."""
    if message is None and phone_number is None:
        raise ValueError("give a message or a phone_number for Lost Mode")
    return _command(
        "EnableLostMode",
        Message=_maybe(_text, "message", message),
        PhoneNumber=_maybe(_text, "phone_number", phone_number),
        Footnote=_maybe(_text, "footnote", footnote),
    )


def disable_lost_mode() -> dict[str, Any]:
    """DisableLostMode."""
    return _command("DisableLostMode")


# --- envelope (§2.2) -----------------------------------------------------------------------------------


def encode_command(command_uuid: str, command: Mapping[str, Any]) -> bytes:
    """The server's reply body carrying one command: `{CommandUUID, Command}`."""
    _text("command_uuid", command_uuid)
    _text("command RequestType", command.get("RequestType"))
    return plist.dumps({"CommandUUID": command_uuid, "Command": dict(command)})


def decode_command(body: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a command reply body (the device side of §2.2); ParseError on anything malformed."""
    message = plist.loads(body)
    command_uuid = required_string(message, "CommandUUID")
    command = message.get("Command")
    if not isinstance(command, dict):
        raise ParseError("Command must be a dictionary")
    required_string(command, "RequestType")
    return command_uuid, command
