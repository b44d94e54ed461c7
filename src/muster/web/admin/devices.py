"""Graph `managedDevices`: list/get with OData options, device actions, and command history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from muster.app import Container
from muster.domain.devices import DeviceAction
from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Permission, Principal
from muster.protocols.odata import next_link, parse_query_options
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/managedDevices", tags=["managedDevices"])

_PROPERTIES = {
    "id": "id",
    "deviceName": "device_name",
    "operatingSystem": "operating_system",
    "osVersion": "os_version",
    "model": "model_name",
    "serialNumber": "serial_number",
    "udid": "udid",
    "imei": "imei",
    "meid": "meid",
    "wiFiMacAddress": "wifi_mac",
    "phoneNumber": "phone_number",
    "isSupervised": "is_supervised",
    "isEncrypted": "is_encrypted",
    "totalStorageSpaceInBytes": "total_storage_bytes",
    "freeStorageSpaceInBytes": "free_storage_bytes",
    "managedDeviceOwnerType": "owner_type",
    "deviceEnrollmentType": "enrollment_type",
    "managementState": "management_state",
    "userPrincipalName": "user_principal_name",
    "enrolledDateTime": "enrolled_at",
    "lastSyncDateTime": "last_sync_at",
}


def _graph(row: dict[str, Any], select: tuple[str, ...] = ()) -> dict[str, Any]:
    """A device row in Graph's `managedDevice` shape."""
    wanted = select or tuple(_PROPERTIES)
    device: dict[str, Any] = {"@odata.type": "#microsoft.graph.managedDevice"}
    for name in wanted:
        if name in _PROPERTIES:
            value = row.get(_PROPERTIES[name])
            device[name] = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    if not select or "manufacturer" in select:
        device["manufacturer"] = "Apple"
    if not select or "managementAgent" in select:
        device["managementAgent"] = "mdm"
    return device


@router.get("")
async def list_devices(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    options = parse_query_options(dict(request.query_params))
    unknown = [
        name for name in options.select if name not in _PROPERTIES and name not in ("manufacturer", "managementAgent")
    ]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    rows, token, total = await container(request).devices.page(admin.org_id, options)
    page: dict[str, Any] = {
        "@odata.context": f"{request.base_url}{DEVICE_MANAGEMENT.lstrip('/')}/$metadata#managedDevices"
    }
    if total is not None:
        page["@odata.count"] = total
    page["value"] = [_graph(row, options.select) for row in rows]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


async def _device(c: Container, admin: Principal, device_id: str) -> dict[str, Any]:
    row = await c.devices.get(admin.org_id, device_id)
    if row is None:
        raise NotFound(f"managed device {device_id} not found")
    return row


@router.get("/{device_id}")
async def get_device(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    row = await _device(container(request), admin, device_id)
    device = _graph(row)
    info = row["inventory"].get("deviceInformation", {})
    device["hardwareInformation"] = {
        "serialNumber": row["serial_number"],
        "model": row["model_name"],
        "manufacturer": "Apple",
        "imei": row["imei"],
        "meid": row["meid"],
        "phoneNumber": row["phone_number"],
        "wifiMac": row["wifi_mac"],
        "totalStorageSpace": row["total_storage_bytes"],
        "freeStorageSpace": row["free_storage_bytes"],
        "isSupervised": row["is_supervised"],
        "isEncrypted": row["is_encrypted"],
        "osBuildNumber": row["build_version"],
        "batteryLevelPercentage": info.get("battery_level"),
    }
    return device


@router.get("/{device_id}/detectedApps")
async def detected_apps(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    row = await _device(container(request), admin, device_id)
    apps = row["inventory"].get("installedApps", [])
    return {
        "value": [
            {
                "id": a.get("identifier"),
                "displayName": a.get("name"),
                "version": a.get("short_version") or a.get("version"),
                "sizeInByte": a.get("bundle_size"),
            }
            for a in apps
        ]
    }


@router.get("/{device_id}/inventory")
async def inventory(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    """Muster-only: everything the device reported (device information, security, apps, profiles, certificates)."""
    row = await _device(container(request), admin, device_id)
    return dict(row["inventory"])


@router.get("/{device_id}/commands")
async def command_history(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    """Muster-only: the MDM commands queued for this device and what became of each."""
    c = container(request)
    await _device(c, admin, device_id)
    history = await c.devices.command_history(admin.org_id, device_id)
    return {
        "value": [
            {
                "commandUuid": h["uuid"],
                "requestType": h["request_type"],
                "action": h["action"],
                "status": h["status"],
                "createdBy": h["created_by"],
                "createdDateTime": _iso(h["created_at"]),
                "sentDateTime": _iso(h["sent_at"]),
                "completedDateTime": _iso(h["completed_at"]),
                "errorChain": h["error_chain"],
            }
            for h in history
        ]
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class ActionResult(BaseModel):
    commandUuid: str


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    actionName: DeviceAction
    deviceIds: list[str] = Field(min_length=1, max_length=100_000)


@router.post("/executeAction")
async def execute_action(
    request: Request, body: BulkAction, admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_UPDATE))]
) -> dict[str, Any]:
    """Graph's bulk action: one action for many devices; one command where the command is the same for all."""
    parameters = {k: v for k, v in (body.model_extra or {}).items()}
    outcome = await container(request).device_actions.perform_many(
        org_id=admin.org_id,
        device_ids=body.deviceIds,
        action=body.actionName.value,
        parameters=parameters,
        actor=admin.display_name,
    )
    return {
        "successfulDeviceIds": list(outcome.queued),
        "failedDeviceIds": list(outcome.refused),
        "failures": [{"deviceId": d, "reason": r} for d, r in outcome.refused.items()],
    }


@router.post("/{device_id}/{action}", status_code=202)
async def device_action(
    request: Request,
    device_id: str,
    action: str,
    admin: Annotated[Principal, Depends(require(Permission.MANAGED_DEVICES_UPDATE))],
    parameters: Annotated[dict[str, Any] | None, Body()] = None,
) -> ActionResult:
    command_uuid = await container(request).device_actions.perform(
        org_id=admin.org_id,
        device_id=device_id,
        action=action,
        parameters=parameters or {},
        actor=admin.display_name,
    )
    return ActionResult(commandUuid=command_uuid)
