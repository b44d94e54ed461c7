"""Typed inventory records read from command results (spec: apple-protocols.md §2.4; schemas
`information.device.yaml`, `information.security.yaml`, `application.installed.list.yaml`,
`profile.list.yaml`, `certificate.list.yaml`).

Parsing is tolerant: devices omit queries they cannot answer and newer OS releases change details, so a
missing or wrong-typed optional key just leaves its field None. Only a structurally wrong result (the list or
dictionary the command returns is missing) raises `ParseError`. Pass the whole result plist, i.e.
`CommandReport.raw`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from muster.protocols.errors import ParseError


def _str(source: Mapping[str, Any], key: str) -> str | None:
    value = source.get(key)
    return value if isinstance(value, str) else None


def _bool(source: Mapping[str, Any], key: str) -> bool | None:
    value = source.get(key)
    return value if isinstance(value, bool) else None


def _int(source: Mapping[str, Any], key: str) -> int | None:
    value = source.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(source: Mapping[str, Any], key: str) -> float | None:
    value = source.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _date(source: Mapping[str, Any], key: str) -> datetime | None:
    # plistlib yields naive datetimes that are UTC by definition of the plist format.
    value = source.get(key)
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def _section(result: Mapping[str, Any], key: str, kind: type) -> Any:
    value = result.get(key) if isinstance(result, Mapping) else None
    if not isinstance(value, kind):
        raise ParseError(f"result has no {key} {'dictionary' if kind is dict else 'array'}")
    return value


@dataclass(frozen=True)
class DeviceInformation:
    """DeviceInformation `QueryResponses`; capacities are in GB as the device reports them."""

    device_name: str | None = None
    os_version: str | None = None
    build_version: str | None = None
    supplemental_build_version: str | None = None
    model_name: str | None = None
    model: str | None = None
    model_number: str | None = None
    product_name: str | None = None
    serial_number: str | None = None
    udid: str | None = None
    imei: str | None = None
    meid: str | None = None
    device_capacity_gb: float | None = None
    available_capacity_gb: float | None = None
    battery_level: float | None = None
    is_supervised: bool | None = None
    is_multi_user: bool | None = None
    is_activation_lock_enabled: bool | None = None
    is_lost_mode_enabled: bool | None = None
    is_device_locator_service_enabled: bool | None = None
    is_cloud_backup_enabled: bool | None = None
    last_cloud_backup_date: datetime | None = None
    is_apple_silicon: bool | None = None
    system_integrity_protection_enabled: bool | None = None
    awaiting_configuration: bool | None = None
    time_zone: str | None = None
    host_name: str | None = None
    local_host_name: str | None = None
    wifi_mac: str | None = None
    bluetooth_mac: str | None = None
    ethernet_mac: str | None = None
    phone_number: str | None = None
    iccid: str | None = None
    current_carrier_network: str | None = None
    is_roaming: bool | None = None


def parse_device_information(result: Mapping[str, Any]) -> DeviceInformation:
    """Read a DeviceInformation result's `QueryResponses`."""
    q = _section(result, "QueryResponses", dict)
    return DeviceInformation(
        device_name=_str(q, "DeviceName"),
        os_version=_str(q, "OSVersion"),
        build_version=_str(q, "BuildVersion"),
        supplemental_build_version=_str(q, "SupplementalBuildVersion"),
        model_name=_str(q, "ModelName"),
        model=_str(q, "Model"),
        model_number=_str(q, "ModelNumber"),
        product_name=_str(q, "ProductName"),
        serial_number=_str(q, "SerialNumber"),
        udid=_str(q, "UDID"),
        imei=_str(q, "IMEI"),
        meid=_str(q, "MEID"),
        device_capacity_gb=_float(q, "DeviceCapacity"),
        available_capacity_gb=_float(q, "AvailableDeviceCapacity"),
        battery_level=_float(q, "BatteryLevel"),
        is_supervised=_bool(q, "IsSupervised"),
        is_multi_user=_bool(q, "IsMultiUser"),
        is_activation_lock_enabled=_bool(q, "IsActivationLockEnabled"),
        is_lost_mode_enabled=_bool(q, "IsMDMLostModeEnabled"),
        is_device_locator_service_enabled=_bool(q, "IsDeviceLocatorServiceEnabled"),
        is_cloud_backup_enabled=_bool(q, "IsCloudBackupEnabled"),
        last_cloud_backup_date=_date(q, "LastCloudBackupDate"),
        is_apple_silicon=_bool(q, "IsAppleSilicon"),
        system_integrity_protection_enabled=_bool(q, "SystemIntegrityProtectionEnabled"),
        awaiting_configuration=_bool(q, "AwaitingConfiguration"),
        time_zone=_str(q, "TimeZone"),
        host_name=_str(q, "HostName"),
        local_host_name=_str(q, "LocalHostName"),
        wifi_mac=_str(q, "WiFiMAC"),
        bluetooth_mac=_str(q, "BluetoothMAC"),
        ethernet_mac=_str(q, "EthernetMAC"),
        phone_number=_str(q, "PhoneNumber"),
        iccid=_str(q, "ICCID"),
        current_carrier_network=_str(q, "CurrentCarrierNetwork"),
        is_roaming=_bool(q, "IsRoaming"),
    )


@dataclass(frozen=True)
class SecurityInfo:
    """SecurityInfo result: passcode and encryption (iOS), FileVault, SIP, firewall and boot (macOS)."""

    hardware_encryption_caps: int | None = None
    passcode_present: bool | None = None
    passcode_compliant: bool | None = None
    passcode_compliant_with_profiles: bool | None = None
    passcode_lock_grace_period: int | None = None
    auto_lock_time: int | None = None
    filevault_enabled: bool | None = None
    filevault_has_personal_recovery_key: bool | None = None
    filevault_has_institutional_recovery_key: bool | None = None
    system_integrity_protection_enabled: bool | None = None
    authenticated_root_volume_enabled: bool | None = None
    firewall_enabled: bool | None = None
    firewall_block_all_incoming: bool | None = None
    firewall_stealth_mode: bool | None = None
    firmware_password_exists: bool | None = None
    recovery_lock_enabled: bool | None = None
    secure_boot_level: str | None = None
    external_boot_level: str | None = None
    remote_desktop_enabled: bool | None = None
    bootstrap_token_allowed_for_authentication: str | None = None
    enrolled_via_dep: bool | None = None
    user_approved_enrollment: bool | None = None
    is_user_enrollment: bool | None = None
    is_activation_lock_manageable: bool | None = None

    @property
    def block_level_encryption(self) -> bool | None:
        """Bit 1 of HardwareEncryptionCaps."""
        return None if self.hardware_encryption_caps is None else bool(self.hardware_encryption_caps & 1)

    @property
    def file_level_encryption(self) -> bool | None:
        """Bit 2 of HardwareEncryptionCaps (data protection)."""
        return None if self.hardware_encryption_caps is None else bool(self.hardware_encryption_caps & 2)

    @property
    def is_encrypted(self) -> bool | None:
        """Storage encryption in force: FileVault on a Mac; on iOS, Data Protection, which Apple turns on when
        the hardware supports file-level encryption and a passcode is set. None when the result cannot tell."""
        if self.filevault_enabled is not None:
            return self.filevault_enabled
        if self.file_level_encryption is None or self.passcode_present is None:
            return None
        return self.file_level_encryption and self.passcode_present


def parse_security_info(result: Mapping[str, Any]) -> SecurityInfo:
    """Read a SecurityInfo result (the FileVault personal recovery key CMS is deliberately not kept)."""
    s = _section(result, "SecurityInfo", dict)
    firewall = _sub(s, "FirewallSettings")
    management = _sub(s, "ManagementStatus")
    boot = _sub(s, "SecureBoot")
    return SecurityInfo(
        hardware_encryption_caps=_int(s, "HardwareEncryptionCaps"),
        passcode_present=_bool(s, "PasscodePresent"),
        passcode_compliant=_bool(s, "PasscodeCompliant"),
        passcode_compliant_with_profiles=_bool(s, "PasscodeCompliantWithProfiles"),
        passcode_lock_grace_period=_int(s, "PasscodeLockGracePeriod"),
        auto_lock_time=_int(s, "AutoLockTime"),
        filevault_enabled=_bool(s, "FDE_Enabled"),
        filevault_has_personal_recovery_key=_bool(s, "FDE_HasPersonalRecoveryKey"),
        filevault_has_institutional_recovery_key=_bool(s, "FDE_HasInstitutionalRecoveryKey"),
        system_integrity_protection_enabled=_bool(s, "SystemIntegrityProtectionEnabled"),
        authenticated_root_volume_enabled=_bool(s, "AuthenticatedRootVolumeEnabled"),
        firewall_enabled=_bool(firewall, "FirewallEnabled"),
        firewall_block_all_incoming=_bool(firewall, "BlockAllIncoming"),
        firewall_stealth_mode=_bool(firewall, "StealthMode"),
        firmware_password_exists=_bool(_sub(s, "FirmwarePasswordStatus"), "PasswordExists"),
        recovery_lock_enabled=_bool(s, "IsRecoveryLockEnabled"),
        secure_boot_level=_str(boot, "SecureBootLevel"),
        external_boot_level=_str(boot, "ExternalBootLevel"),
        remote_desktop_enabled=_bool(s, "RemoteDesktopEnabled"),
        bootstrap_token_allowed_for_authentication=_str(s, "BootstrapTokenAllowedForAuthentication"),
        enrolled_via_dep=_bool(management, "EnrolledViaDEP"),
        user_approved_enrollment=_bool(management, "UserApprovedEnrollment"),
        is_user_enrollment=_bool(management, "IsUserEnrollment"),
        is_activation_lock_manageable=_bool(management, "IsActivationLockManageable"),
    )


def _sub(source: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = source.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class InstalledApplication:
    """One InstalledApplicationList entry (entries without an Identifier are skipped)."""

    identifier: str
    name: str | None = None
    version: str | None = None
    short_version: str | None = None
    bundle_size: int | None = None
    dynamic_size: int | None = None
    is_validated: bool | None = None
    installing: bool | None = None
    app_store_vendable: bool | None = None
    device_based_vpp: bool | None = None
    beta_app: bool | None = None
    has_update_available: bool | None = None
    is_app_clip: bool | None = None
    external_version_identifier: int | None = None
    source: str | None = None


def parse_installed_applications(result: Mapping[str, Any]) -> list[InstalledApplication]:
    """Read an InstalledApplicationList result."""
    apps = []
    for item in _section(result, "InstalledApplicationList", list):
        identifier = _str(item, "Identifier") if isinstance(item, dict) else None
        if not identifier:
            continue
        apps.append(
            InstalledApplication(
                identifier=identifier,
                name=_str(item, "Name"),
                version=_str(item, "Version"),
                short_version=_str(item, "ShortVersion"),
                bundle_size=_int(item, "BundleSize"),
                dynamic_size=_int(item, "DynamicSize"),
                is_validated=_bool(item, "IsValidated"),
                installing=_bool(item, "Installing"),
                app_store_vendable=_bool(item, "AppStoreVendable"),
                device_based_vpp=_bool(item, "DeviceBasedVPP"),
                beta_app=_bool(item, "BetaApp"),
                has_update_available=_bool(item, "HasUpdateAvailable"),
                is_app_clip=_bool(item, "IsAppClip"),
                external_version_identifier=_int(item, "ExternalVersionIdentifier"),
                source=_str(item, "Source"),
            )
        )
    return apps


@dataclass(frozen=True)
class InstalledProfile:
    """One ProfileList entry (entries without PayloadIdentifier or PayloadUUID are skipped)."""

    identifier: str
    uuid: str
    display_name: str | None = None
    organization: str | None = None
    description: str | None = None
    is_managed: bool = False
    is_encrypted: bool = False
    removal_disallowed: bool = False
    has_removal_passcode: bool = False
    payload_types: tuple[str, ...] = ()


def parse_profile_list(result: Mapping[str, Any]) -> list[InstalledProfile]:
    """Read a ProfileList result; absent booleans take the schema default (false)."""
    profiles = []
    for item in _section(result, "ProfileList", list):
        if not isinstance(item, dict):
            continue
        identifier, uuid = _str(item, "PayloadIdentifier"), _str(item, "PayloadUUID")
        if not identifier or not uuid:
            continue
        content = item.get("PayloadContent")
        payloads = content if isinstance(content, list) else []
        profiles.append(
            InstalledProfile(
                identifier=identifier,
                uuid=uuid,
                display_name=_str(item, "PayloadDisplayName"),
                organization=_str(item, "PayloadOrganization"),
                description=_str(item, "PayloadDescription"),
                is_managed=bool(_bool(item, "IsManaged")),
                is_encrypted=bool(_bool(item, "IsEncrypted")),
                removal_disallowed=bool(_bool(item, "PayloadRemovalDisallowed")),
                has_removal_passcode=bool(_bool(item, "HasRemovalPasscode")),
                payload_types=tuple(kind for p in payloads if isinstance(p, dict) and (kind := _str(p, "PayloadType"))),
            )
        )
    return profiles


@dataclass(frozen=True)
class SharedDeviceUser:
    """One UserList entry of a Shared iPad (entries without UserName are skipped); quotas in bytes."""

    user_name: str
    is_logged_in: bool
    has_data_to_sync: bool
    data_quota: int | None = None
    data_used: int | None = None


def parse_user_list(result: Mapping[str, Any]) -> list[SharedDeviceUser]:
    """Read a UserList result."""
    return [
        SharedDeviceUser(
            user_name=name,
            is_logged_in=bool(_bool(item, "IsLoggedIn")),
            has_data_to_sync=bool(_bool(item, "HasDataToSync")),
            data_quota=_int(item, "DataQuota"),
            data_used=_int(item, "DataUsed"),
        )
        for item in _section(result, "Users", list)
        if isinstance(item, dict) and (name := _str(item, "UserName"))
    ]


@dataclass(frozen=True)
class InstalledCertificate:
    """One CertificateList entry; `not_after` is None when the DER does not parse."""

    common_name: str | None
    is_identity: bool
    sha256_hex: str
    not_after: datetime | None = None


def parse_certificate_list(result: Mapping[str, Any]) -> list[InstalledCertificate]:
    """Read a CertificateList result (entries without certificate Data are skipped)."""
    certificates = []
    for item in _section(result, "CertificateList", list):
        der = item.get("Data") if isinstance(item, dict) else None
        if not isinstance(der, bytes) or not der:
            continue
        certificates.append(
            InstalledCertificate(
                common_name=_str(item, "CommonName"),
                is_identity=bool(_bool(item, "IsIdentity")),
                sha256_hex=hashlib.sha256(der).hexdigest(),
                not_after=_not_after(der),
            )
        )
    return certificates


def _not_after(der: bytes) -> datetime | None:
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None


def to_json(record: object) -> dict[str, Any]:
    """A JSON-ready dict of an inventory record: datetimes as ISO 8601 strings, tuples as lists."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError("to_json expects an inventory record")
    return {key: _json_value(value) for key, value in dataclasses.asdict(record).items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, bytes):
        raise TypeError("inventory records never carry bytes")
    return value
