"""Turning acknowledged command results into the device record the admin sees."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from muster.domain.devices import DONE_STATE, DeviceAction
from muster.protocols.apple import inventory as parse
from muster.protocols.apple.commands import decode_command
from muster.services.ports import CompletedCommand, MdmStore

_GIB = 1024**3


def operating_system(product_name: str | None, model_name: str | None = None) -> str | None:
    """Graph's `operatingSystem` from Apple's product name (e.g. `iPad13,4` -> iPadOS)."""
    name = product_name or model_name or ""
    for prefix, system in (
        ("iPhone", "iOS"),
        ("iPod", "iOS"),
        ("iPad", "iPadOS"),
        ("Mac", "macOS"),
        ("AppleTV", "tvOS"),
        ("Watch", "watchOS"),
        ("RealityDevice", "visionOS"),
    ):
        if name.startswith(prefix):
            return system
    if model_name and ("Mac" in model_name or "iMac" in model_name):
        return "macOS"
    return None


def _device_information_columns(info: parse.DeviceInformation) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "device_name": info.device_name,
        "os_version": info.os_version,
        "build_version": info.build_version,
        "model": info.model,
        "model_name": info.model_name,
        "product_name": info.product_name,
        "serial_number": info.serial_number,
        "imei": info.imei,
        "meid": info.meid,
        "wifi_mac": info.wifi_mac,
        "phone_number": info.phone_number,
        "is_supervised": info.is_supervised,
        "operating_system": operating_system(info.product_name, info.model_name),
    }
    if info.device_capacity_gb is not None:
        columns["total_storage_bytes"] = int(info.device_capacity_gb * _GIB)
    if info.available_capacity_gb is not None:
        columns["free_storage_bytes"] = int(info.available_capacity_gb * _GIB)
    return {key: value for key, value in columns.items() if value is not None}


def _settings_applied(command: bytes) -> dict[str, Any]:
    """An acknowledged Settings command changed what the device reports: keep the record in step with it."""
    _, payload = decode_command(command)
    columns: dict[str, Any] = {}
    for item in payload.get("Settings", []):
        if isinstance(item, dict) and item.get("Item") == "DeviceName" and isinstance(item.get("DeviceName"), str):
            columns["device_name"] = item["DeviceName"]
    return columns


class InventoryRecorder:
    def __init__(self, store: MdmStore) -> None:
        self._store = store

    async def record(self, completed: CompletedCommand, result: Mapping[str, Any], *, now: datetime) -> None:
        columns, inventory = self._parse(completed.request_type, result)
        if completed.request_type == "Settings":
            columns = _settings_applied(completed.command)
        if columns or inventory:
            await self._store.apply_inventory(device_id=completed.device_id, columns=columns, inventory=inventory)
        if completed.action in DONE_STATE:
            state = DONE_STATE[DeviceAction(completed.action)]
            await self._store.set_management_state(
                device_id=completed.device_id, state=state.value, now=now, unenrolled=True
            )

    @staticmethod
    def _parse(request_type: str, result: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        match request_type:
            case "DeviceInformation":
                info = parse.parse_device_information(result)
                return _device_information_columns(info), {"deviceInformation": parse.to_json(info)}
            case "SecurityInfo":
                security = parse.parse_security_info(result)
                columns = {} if security.is_encrypted is None else {"is_encrypted": security.is_encrypted}
                return columns, {"securityInfo": parse.to_json(security)}
            case "InstalledApplicationList":
                apps = parse.parse_installed_applications(result)
                return {}, {"installedApps": [parse.to_json(app) for app in apps]}
            case "ProfileList":
                profiles = parse.parse_profile_list(result)
                return {}, {"profiles": [parse.to_json(p) for p in profiles]}
            case "CertificateList":
                certificates = parse.parse_certificate_list(result)
                return {}, {"certificates": [parse.to_json(c) for c in certificates]}
            case "UserList":
                users = parse.parse_user_list(result)
                return {}, {"sharedDeviceUsers": [parse.to_json(u) for u in users]}
        return {}, {}
