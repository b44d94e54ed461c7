"""Plausible answers a virtual Apple device gives to MDM commands (apple-protocols.md §2.4)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


@dataclass(frozen=True)
class DeviceModel:
    product_name: str
    model: str
    model_name: str
    os_version: str
    build_version: str
    capacity_gb: float


IPHONE = DeviceModel("iPhone15,2", "MQ9X3LL/A", "iPhone", "17.5", "21F79", 128.0)
IPAD = DeviceModel("iPad13,4", "MHNF3LL/A", "iPad Pro", "17.5", "21F79", 256.0)
MAC = DeviceModel("Mac14,2", "MLY33LL/A", "MacBook Air", "14.5", "23F79", 512.0)


@dataclass
class DeviceFacts:
    """The state a virtual device reports."""

    udid: str
    serial_number: str
    model: DeviceModel
    device_name: str
    imei: str | None
    supervised: bool
    wifi_mac: str
    apps: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "Identifier": "com.apple.mobilesafari",
                "Name": "Safari",
                "Version": "8617.2.4.10.8",
                "ShortVersion": "17.5",
                "BundleSize": 12_345_678,
            },
            {
                "Identifier": "com.microsoft.Office.Outlook",
                "Name": "Outlook",
                "Version": "4.2418.0",
                "ShortVersion": "4.2418.0",
                "BundleSize": 345_678_901,
            },
        ]
    )
    managed_app_ids: frozenset[str] = frozenset({"com.microsoft.Office.Outlook"})  # installed by the MDM
    lost_mode: bool = False
    multi_user: bool = False  # a Shared iPad (the ADE profile's is_multi_user)
    # A Shared iPad's resident users: Managed Apple IDs, the first one signed in.
    users: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "UserName": "ana@example.com",
                "IsLoggedIn": True,
                "HasDataToSync": False,
                "DataQuota": 8 * 10**9,
                "DataUsed": 1_250_000_000,
            },
            {
                "UserName": "bo@example.com",
                "IsLoggedIn": False,
                "HasDataToSync": True,
                "DataQuota": 8 * 10**9,
                "DataUsed": 310_000_000,
            },
        ]
    )

    def query_responses(self, queries: list[str]) -> dict[str, Any]:
        known: dict[str, Any] = {
            "UDID": self.udid,
            "SerialNumber": self.serial_number,
            "DeviceName": self.device_name,
            "OSVersion": self.model.os_version,
            "BuildVersion": self.model.build_version,
            "ProductName": self.model.product_name,
            "Model": self.model.model,
            "ModelName": self.model.model_name,
            "DeviceCapacity": self.model.capacity_gb,
            "AvailableDeviceCapacity": round(self.model.capacity_gb * 0.61, 2),
            "BatteryLevel": 0.87,
            "IsSupervised": self.supervised,
            "IsMultiUser": self.multi_user,
            "IsActivationLockEnabled": False,
            "IsMDMLostModeEnabled": self.lost_mode,
            "WiFiMAC": self.wifi_mac,
            "BluetoothMAC": self.wifi_mac[:-1] + "f",
        }
        if self.imei:
            known["IMEI"] = self.imei
        return {name: known[name] for name in queries if name in known}

    def security_info(self) -> dict[str, Any]:
        return {
            "HardwareEncryptionCaps": 3,
            "PasscodePresent": True,
            "PasscodeCompliant": True,
            "PasscodeCompliantWithProfiles": True,
            "PasscodeLockGracePeriodEnforced": 0,
        }


def profile_list_entry(profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "PayloadIdentifier": profile["PayloadIdentifier"],
        "PayloadUUID": profile["PayloadUUID"],
        "PayloadVersion": 1,
        "PayloadDisplayName": profile.get("PayloadDisplayName", ""),
        "PayloadOrganization": profile.get("PayloadOrganization", ""),
        "IsManaged": True,
        "IsEncrypted": False,
        "PayloadRemovalDisallowed": False,
        "HasRemovalPasscode": False,
        "PayloadContent": [],
    }


def certificate_list_entry(certificate: x509.Certificate, *, identity: bool) -> dict[str, Any]:
    der = certificate.public_bytes(Encoding.DER)
    common_name = certificate.subject.rfc4514_string()
    return {"CommonName": common_name, "IsIdentity": identity, "Data": der, "_sha256": hashlib.sha256(der).hexdigest()}
