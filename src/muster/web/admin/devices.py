"""Graph `managedDevices`: list/get with OData options, device actions, and command history.

Every route sees only the devices within the admin's scope tags for the route's permission (device actions: the
action's own permission, `ACTION_PERMISSION`); anything else is a 403. Routes that change a device or act on it
also need an assignment granting that permission whose scope groups hold the device or its primary user (or that
has no scope groups); reads are governed by scope tags alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.devices import DeviceAction
from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import ACTION_PERMISSION, Permission, Principal, TaggedObject
from muster.protocols.odata import next_link, parse_query_options
from muster.services.devices import OUTSIDE_SCOPE_GROUPS
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, ensure_in_scope, forbid, grantable_tags, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/managedDevices", tags=["managedDevices"])


def _on_device(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """`require(permission)` over the device the path names."""
    return require(permission, TaggedObject.MANAGED_DEVICE, "device_id")


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
    "deviceCategoryDisplayName": "device_category_display_name",
}


_COMPUTED = ("manufacturer", "managementAgent", "roleScopeTagIds")


def _graph(row: dict[str, Any], select: tuple[str, ...] = ()) -> dict[str, Any]:
    """A device row in Graph's `managedDevice` shape."""
    wanted = select or tuple(_PROPERTIES)
    device: dict[str, Any] = {"@odata.type": "#microsoft.graph.managedDevice"}
    for name in wanted:
        if name in _PROPERTIES:
            value = row.get(_PROPERTIES[name])
            device[name] = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    if "deviceCategoryDisplayName" in device and device["deviceCategoryDisplayName"] is None:
        device["deviceCategoryDisplayName"] = "Unassigned"  # CAT-05 (003_729e51c15a5a5608.txt:1564)
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
    unknown = [name for name in options.select if name not in _PROPERTIES and name not in _COMPUTED]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    c = container(request)
    rows, token, total = await c.devices.page(admin.org_id, options, admin.scope(Permission.MANAGED_DEVICES_READ))
    page: dict[str, Any] = {
        "@odata.context": f"{request.base_url}{DEVICE_MANAGEMENT.lstrip('/')}/$metadata#managedDevices"
    }
    if total is not None:
        page["@odata.count"] = total
    page["value"] = [_graph(row, options.select) for row in rows]
    if not options.select or "roleScopeTagIds" in options.select:
        tags = await c.roles.tags_of(TaggedObject.MANAGED_DEVICE, [row["id"] for row in rows])
        for device in page["value"]:
            device["roleScopeTagIds"] = tags[device["id"]]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


async def _device(request: Request, admin: Principal, device_id: str) -> dict[str, Any]:
    """The device (its scope was checked by the route's `require`)."""
    row = await container(request).devices.get(admin.org_id, device_id)
    if row is None:
        raise NotFound(f"managed device {device_id} not found")
    return row


@router.get("/{device_id}")
async def get_device(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    return await _full_device(request, admin, device_id)


async def _full_device(request: Request, admin: Principal, device_id: str) -> dict[str, Any]:
    row = await _device(request, admin, device_id)
    device = _graph(row)
    tags = await container(request).roles.tags_of(TaggedObject.MANAGED_DEVICE, [device_id])
    device["roleScopeTagIds"] = tags[device_id]
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
        "isSharedDevice": info.get("is_multi_user"),
    }
    if "sharedDeviceUsers" in row["inventory"]:  # a Shared iPad's last UserList
        device["sharedDeviceCachedUsers"] = [
            {
                "userPrincipalName": u["user_name"],
                "dataToSync": u["has_data_to_sync"],
                "dataQuota": u["data_quota"],
                "dataUsed": u["data_used"],
            }
            for u in row["inventory"]["sharedDeviceUsers"]
        ]
    return device


@router.get("/{device_id}/detectedApps")
async def detected_apps(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    row = await _device(request, admin, device_id)
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
    request: Request, device_id: str, admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    """Muster-only: everything the device reported (device information, security, apps, profiles, certificates)."""
    row = await _device(request, admin, device_id)
    return dict(row["inventory"])


@router.get("/{device_id}/commands")
async def command_history(
    request: Request, device_id: str, admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_READ))]
) -> dict[str, Any]:
    """Muster-only: the MDM commands queued for this device and what became of each."""
    c = container(request)
    await _device(request, admin, device_id)
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


class DeviceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roleScopeTagIds: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(None, max_length=100)
    managedDeviceOwnerType: Literal["company", "personal"] | None = None


@router.patch("/{device_id}")
async def update_device(
    request: Request,
    device_id: str,
    body: DeviceUpdate,
    admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_UPDATE))],
) -> dict[str, Any]:
    """Set the device's scope tags (they must be within the admin's own scope) and its ownership (OWN-05)."""
    await _device(request, admin, device_id)
    await ensure_in_scope_groups(request, admin, Permission.MANAGED_DEVICES_UPDATE, device_id)
    c = container(request)
    if body.roleScopeTagIds is not None:
        tags = await grantable_tags(request, admin, Permission.MANAGED_DEVICES_UPDATE, body.roleScopeTagIds)
        await c.roles.set_object_tags(
            org_id=admin.org_id,
            object_type=TaggedObject.MANAGED_DEVICE,
            object_id=device_id,
            tag_ids=tags,
            actor=admin.display_name,
        )
    if body.managedDeviceOwnerType is not None:
        await c.device_actions.set_ownership(
            org_id=admin.org_id, device_id=device_id, owner=body.managedDeviceOwnerType, actor=admin.display_name
        )
    return await _full_device(request, admin, device_id)


async def ensure_in_scope_groups(request: Request, admin: Principal, permission: Permission, device_id: str) -> None:
    """403 unless an assignment granting `permission` over the device's tags also has it in its scope groups."""
    outside = await container(request).device_actions.outside_scope_groups(admin, permission, [device_id])
    forbid(OUTSIDE_SCOPE_GROUPS.format(permission=permission.value) if outside else None)


def _action_permission(admin: Principal, action: str) -> Permission:
    """The permission the action needs (an unknown action is left to the service's clear 400)."""
    try:
        permission = ACTION_PERMISSION[DeviceAction(action)]
    except ValueError:
        return Permission.MANAGED_DEVICES_UPDATE
    forbid(None if admin.can(permission) else f"{admin.display_name} lacks the permission {permission.value}")
    return permission


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
    c = container(request)
    permission = _action_permission(admin, body.actionName.value)
    scope = admin.scope(permission)
    wanted = list(dict.fromkeys(body.deviceIds))
    allowed = set(wanted) if scope.everything else await c.roles.in_scope(TaggedObject.MANAGED_DEVICE, wanted, scope)
    refused = {d: OUT_OF_SCOPE_DEVICE for d in wanted if d not in allowed}
    outside_groups = await c.device_actions.outside_scope_groups(admin, permission, [d for d in wanted if d in allowed])
    refused |= dict.fromkeys(outside_groups, OUTSIDE_SCOPE_GROUPS.format(permission=permission.value))
    allowed -= outside_groups
    queued: dict[str, str] = {}
    if allowed:
        outcome = await c.device_actions.perform_many(
            org_id=admin.org_id,
            device_ids=[d for d in wanted if d in allowed],
            action=body.actionName.value,
            parameters=parameters,
            actor=admin.display_name,
        )
        queued, refused = outcome.queued, {**refused, **outcome.refused}
    return {
        "successfulDeviceIds": list(queued),
        "failedDeviceIds": list(refused),
        "failures": [{"deviceId": d, "reason": r} for d, r in refused.items()],
    }


OUT_OF_SCOPE_DEVICE = "the device is outside your scope tags for this action"


@router.post("/{device_id}/{action}", status_code=202)
async def device_action(
    request: Request,
    device_id: str,
    action: str,
    admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_UPDATE))],
    parameters: Annotated[dict[str, Any] | None, Body()] = None,
) -> ActionResult:
    permission = _action_permission(admin, action)
    await ensure_in_scope(request, admin, permission, TaggedObject.MANAGED_DEVICE, device_id)
    await ensure_in_scope_groups(request, admin, permission, device_id)
    command_uuid = await container(request).device_actions.perform(
        org_id=admin.org_id,
        device_id=device_id,
        action=action,
        parameters=parameters or {},
        actor=admin.display_name,
    )
    return ActionResult(commandUuid=command_uuid)
