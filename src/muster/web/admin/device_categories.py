"""Graph `deviceCategories` (seed-catalog-A §2.7, E18) and a managed device's `deviceCategory` reference.

Categories carry scope tags (`roleScopeTagIds`); an admin sees and changes only those within its scope, and one
outside it is "not found". Only roles holding DEVICE_CATEGORIES_WRITE (built in: Intune Administrator) configure
categories (CAT-01). Setting a device's category (CAT-07) is a device update: MANAGED_DEVICES_UPDATE over the
device (scope tags and scope groups), and the category must be within the admin's scope for that permission.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Permission, Principal, TaggedObject
from muster.services.device_categories import CategoryChange, CategoryRow, DynamicGroupRule
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, require
from muster.web.admin.devices import ensure_in_scope_groups

router = APIRouter(prefix=DEVICE_MANAGEMENT, tags=["deviceCategories"])

CATEGORIES = f"{DEVICE_MANAGEMENT}/deviceCategories"
ODATA_TYPE = "#microsoft.graph.deviceCategory"
Reader = Annotated[Principal, Depends(require(Permission.DEVICE_CATEGORIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.DEVICE_CATEGORIES_WRITE))]
TagIds = list[Annotated[str, Field(min_length=1, max_length=64)]]


def _on_device(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return require(permission, TaggedObject.MANAGED_DEVICE, "device_id")


class CategoryBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    odata_type: str | None = Field(default=None, alias="@odata.type")
    displayName: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=1024)
    roleScopeTagIds: TagIds | None = Field(default=None, max_length=100)


def graph_category(row: CategoryRow) -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPE,
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "roleScopeTagIds": list(row.scope_tag_ids),
    }


def _rename_warnings(old_name: str, groups: list[DynamicGroupRule]) -> list[str]:
    """CAT-06: Muster does not rewrite rules admins wrote; it names the groups to review."""
    return [
        f"dynamic group {group.display_name!r} ({group.group_id}) tests device.deviceCategory against the old "
        f"name {old_name!r}: its members change unless its membership rule is updated"
        for group in groups
    ]


_CATEGORIES = GraphCollection(
    "deviceManagement/deviceCategories",
    {"id": str, "displayName": str, "description": str},
    ("roleScopeTagIds",),
    default_orderby="displayName",
)


@router.get("/deviceCategories", dependencies=[ODATA_QUERY_OPTIONS])
async def list_device_categories(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).device_categories.all(admin.org_id, admin.scope(Permission.DEVICE_CATEGORIES_READ))
    return _CATEGORIES.response(request, [graph_category(row) for row in rows])


@router.post("/deviceCategories", status_code=201)
async def create_device_category(request: Request, body: CategoryBody, admin: Writer) -> dict[str, Any]:
    """CAT-02: a name (required, unique), a description and scope tags (none given: Default, or your own)."""
    if body.displayName is None:
        raise InvalidInput("displayName is required")
    tags = await grantable_tags(request, admin, Permission.DEVICE_CATEGORIES_WRITE, body.roleScopeTagIds)
    row = await container(request).device_categories.create(
        org_id=admin.org_id, display_name=body.displayName, description=body.description, tag_ids=tags
    )
    return graph_category(row)


@router.get("/deviceCategories/{category_id}")
async def get_device_category(request: Request, category_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.DEVICE_CATEGORIES_READ)
    return graph_category(await container(request).device_categories.get(admin.org_id, category_id, scope))


@router.patch("/deviceCategories/{category_id}")
async def update_device_category(
    request: Request, category_id: str, body: CategoryBody, admin: Writer
) -> dict[str, Any]:
    """A rename answers with `warnings` naming the dynamic groups whose membership it changes (CAT-06)."""
    categories = container(request).device_categories
    scope = admin.scope(Permission.DEVICE_CATEGORIES_WRITE)
    before = await categories.get(admin.org_id, category_id, scope)
    tags = None
    if body.roleScopeTagIds is not None:
        tags = await grantable_tags(request, admin, Permission.DEVICE_CATEGORIES_WRITE, body.roleScopeTagIds)
    change = CategoryChange(body.displayName, body.description, tags)
    row, affected = await categories.update(admin.org_id, category_id, change, scope)
    return graph_category(row) | {"warnings": _rename_warnings(before.display_name, affected)}


@router.delete("/deviceCategories/{category_id}", status_code=204)
async def delete_device_category(request: Request, category_id: str, admin: Writer) -> Response:
    """CAT-05: the category's devices become "Unassigned"."""
    scope = admin.scope(Permission.DEVICE_CATEGORIES_WRITE)
    await container(request).device_categories.delete(admin.org_id, category_id, scope)
    return Response(status_code=204)


@router.get("/managedDevices/{device_id}/deviceCategory")
async def get_device_category_of_device(
    request: Request,
    device_id: str,
    admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_READ))],
) -> dict[str, Any]:
    """The device's category; 404 when it has none ("Unassigned")."""
    scope = admin.scope(Permission.MANAGED_DEVICES_READ)
    row = await container(request).device_categories.of_device(admin.org_id, device_id, scope)
    if row is None:
        raise NotFound(f"managed device {device_id} has no device category (Unassigned)")
    return graph_category(row)


class CategoryReference(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    odata_id: str = Field(alias="@odata.id", max_length=2048, description=".../deviceCategories/{id}")

    def category_id(self) -> str:
        _, found, category_id = self.odata_id.rpartition("/deviceCategories/")
        if not found or not category_id or "/" in category_id:
            raise InvalidInput("@odata.id must name a device category: .../deviceManagement/deviceCategories/{id}")
        return category_id


@router.put("/managedDevices/{device_id}/deviceCategory/$ref", status_code=204)
async def set_device_category_of_device(
    request: Request,
    device_id: str,
    body: CategoryReference,
    admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_UPDATE))],
) -> Response:
    """CAT-07: set the device's category."""
    await _set(request, admin, device_id, body.category_id())
    return Response(status_code=204)


@router.delete("/managedDevices/{device_id}/deviceCategory/$ref", status_code=204)
async def clear_device_category_of_device(
    request: Request,
    device_id: str,
    admin: Annotated[Principal, Depends(_on_device(Permission.MANAGED_DEVICES_UPDATE))],
) -> Response:
    """The device goes back to "Unassigned"."""
    await _set(request, admin, device_id, None)
    return Response(status_code=204)


async def _set(request: Request, admin: Principal, device_id: str, category_id: str | None) -> None:
    await ensure_in_scope_groups(request, admin, Permission.MANAGED_DEVICES_UPDATE, device_id)
    scope = admin.scope(Permission.MANAGED_DEVICES_UPDATE)
    await container(request).device_categories.set_for_device(admin.org_id, device_id, category_id, scope)
