"""Device enrollment managers, Muster-only in Graph's style (Intune has no Graph resource for them, anchors.md).

A DEM's `id` is its user's id. Seeds: seed-catalog-A §2.6 DEM-01..06 (003_729e51c15a5a5608.txt:1442-1523).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.rbac import Permission, Principal
from muster.services.enrollment_managers import EnrollmentManagerRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/deviceEnrollmentManagers", tags=["deviceEnrollmentManagers"])

# DEM-03 (003_729e51c15a5a5608.txt:1444, 1461-1468): only roles holding these may view, add and delete DEMs.
Reader = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_MANAGERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_MANAGERS_UPDATE))]


class ManagerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    userPrincipalName: str = Field(min_length=1, max_length=320)


def graph_manager(row: EnrollmentManagerRow) -> dict[str, Any]:
    return {
        "@odata.type": "#muster.deviceEnrollmentManager",
        "id": row.user_id,
        "userId": row.user_id,
        "userPrincipalName": row.user_principal_name,
        "displayName": row.display_name,
        "addedDateTime": _time(row.added_at),
        "addedBy": row.added_by,
        "enrolledDeviceCount": row.enrolled_device_count,
    }


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


_MANAGERS = GraphCollection(
    "deviceManagement/deviceEnrollmentManagers",
    {
        "id": str,
        "userId": str,
        "userPrincipalName": str,
        "displayName": str,
        "addedDateTime": datetime,
        "addedBy": str,
        "enrolledDeviceCount": int,
    },
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_device_enrollment_managers(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).enrollment_managers.all(admin.org_id)
    return _MANAGERS.response(request, [graph_manager(row) for row in rows])


@router.post("", status_code=201)
async def add_device_enrollment_manager(request: Request, body: ManagerBody, admin: Writer) -> dict[str, Any]:
    """DEM-01: a directory user, enabled and not an administrator (DEM-04); at most 150 (DEM-06)."""
    row = await container(request).enrollment_managers.add(
        admin.org_id, body.userPrincipalName, actor=admin.display_name
    )
    return graph_manager(row)


@router.get("/{manager_id}")
async def get_device_enrollment_manager(request: Request, manager_id: str, admin: Reader) -> dict[str, Any]:
    return graph_manager(await container(request).enrollment_managers.get(admin.org_id, manager_id))


@router.delete("/{manager_id}", status_code=204)
async def remove_device_enrollment_manager(request: Request, manager_id: str, admin: Writer) -> Response:
    """DEM-02."""
    await container(request).enrollment_managers.remove(admin.org_id, manager_id, actor=admin.display_name)
    return Response(status_code=204)
