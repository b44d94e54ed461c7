"""Graph `termsAndConditions` (seed-catalog-A §2.8, E19): policies, their assignments and the acceptance report.

Policies carry scope tags (`roleScopeTagIds`); an admin reaches only those within its scope for the route's
permission, and one outside it is "not found". The acceptance report is read with TERMS_AND_CONDITIONS_READ: it
is a view of one policy, scoped by that policy's tags (REPORTS_READ is for the tenant-wide reports).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.rbac import Permission, Principal
from muster.domain.terms import Acceptance, accepted_latest, report_csv
from muster.services.terms import TermsRow, TermsText
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/termsAndConditions", tags=["termsAndConditions"])


Reader = Annotated[Principal, Depends(require(Permission.TERMS_AND_CONDITIONS_READ))]
Creator = Annotated[Principal, Depends(require(Permission.TERMS_AND_CONDITIONS_CREATE))]
Updater = Annotated[Principal, Depends(require(Permission.TERMS_AND_CONDITIONS_UPDATE))]
Deleter = Annotated[Principal, Depends(require(Permission.TERMS_AND_CONDITIONS_DELETE))]
Assigner = Annotated[Principal, Depends(require(Permission.TERMS_AND_CONDITIONS_ASSIGN))]
TagIds = list[Annotated[str, Field(min_length=1, max_length=64)]]


class TermsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    odata_type: str | None = Field(default=None, alias="@odata.type")
    displayName: str | None = Field(default=None, description="Admins only: users never see it.")
    description: str | None = Field(default=None, description="Admins only: users never see it.")
    title: str | None = Field(default=None, description="Shown to users, in bold.")
    bodyText: str | None = Field(default=None, description="The full terms, behind 'Read terms'.")
    acceptanceStatement: str | None = Field(default=None, description="The summary shown under the title.")
    version: int | None = Field(
        default=None, description="PATCH: the current version + 1 requires every assigned user to accept again."
    )
    roleScopeTagIds: TagIds | None = Field(default=None, max_length=100)

    def text(self) -> TermsText:
        return TermsText(self.displayName, self.description, self.title, self.bodyText, self.acceptanceStatement)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_terms(row: TermsRow) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.termsAndConditions",
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "title": row.title,
        "bodyText": row.body_text,
        "acceptanceStatement": row.acceptance_statement,
        "version": row.version,
        "createdDateTime": _iso(row.created_at),
        "lastModifiedDateTime": _iso(row.updated_at),
        "roleScopeTagIds": list(row.scope_tag_ids),
    }


def graph_assignments(row: TermsRow) -> list[dict[str, Any]]:
    return [
        {"@odata.type": "#microsoft.graph.termsAndConditionsAssignment", "id": f"{row.id}_{i}", "target": t.to_graph()}
        for i, t in enumerate(row.targets)
    ]


def graph_acceptance(row: TermsRow, acceptance: Acceptance) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.termsAndConditionsAcceptanceStatus",
        "id": f"{row.id}_{acceptance.user_id}",
        "userDisplayName": acceptance.user_display_name,
        "userPrincipalName": acceptance.user_principal_name,
        "acceptedVersion": acceptance.accepted_version,
        "acceptedDateTime": _iso(acceptance.accepted_at),
        "acceptedLatest": accepted_latest(acceptance, row.version),  # Muster: TC-07's "Accepted latest"
    }


_TERMS = GraphCollection(
    "deviceManagement/termsAndConditions",
    {
        "id": str,
        "displayName": str,
        "description": str,
        "title": str,
        "version": int,
        "createdDateTime": datetime,
        "lastModifiedDateTime": datetime,
    },
    ("bodyText", "acceptanceStatement", "roleScopeTagIds"),
    default_orderby="displayName",
)
_ASSIGNMENTS = GraphCollection(
    "deviceManagement/termsAndConditions('{terms_id}')/assignments", {"id": str}, ("target",)
)
_ACCEPTANCES = GraphCollection(
    "deviceManagement/termsAndConditions('{terms_id}')/acceptanceStatuses",
    {
        "id": str,
        "userDisplayName": str,
        "userPrincipalName": str,
        "acceptedVersion": int,
        "acceptedDateTime": datetime,
        "acceptedLatest": bool,
    },
    default_orderby="acceptedDateTime",
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_terms(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).terms.all(admin.org_id, admin.scope(Permission.TERMS_AND_CONDITIONS_READ))
    return _TERMS.response(request, [graph_terms(row) for row in rows])


@router.post("", status_code=201)
async def create_terms(request: Request, body: TermsBody, admin: Creator) -> dict[str, Any]:
    """TC-02, TC-04: a new policy starts at version 1; assign it with `assign`."""
    tags = await grantable_tags(request, admin, Permission.TERMS_AND_CONDITIONS_CREATE, body.roleScopeTagIds)
    row = await container(request).terms.create(
        org_id=admin.org_id, text=body.text(), tag_ids=tags, version=body.version
    )
    return graph_terms(row)


@router.get("/{terms_id}")
async def get_terms(request: Request, terms_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.TERMS_AND_CONDITIONS_READ)
    return graph_terms(await container(request).terms.get(admin.org_id, terms_id, scope))


@router.patch("/{terms_id}")
async def update_terms(request: Request, terms_id: str, body: TermsBody, admin: Updater) -> dict[str, Any]:
    """TC-05: `version` stays (earlier acceptances remain valid) or becomes the current one + 1 (re-accept)."""
    terms = container(request).terms
    scope = admin.scope(Permission.TERMS_AND_CONDITIONS_UPDATE)
    await terms.get(admin.org_id, terms_id, scope)  # out of scope: 404 before the tags are looked at
    tags = None
    if body.roleScopeTagIds is not None:
        tags = await grantable_tags(request, admin, Permission.TERMS_AND_CONDITIONS_UPDATE, body.roleScopeTagIds)
    row = await terms.update(admin.org_id, terms_id, scope, text=body.text(), version=body.version, tag_ids=tags)
    return graph_terms(row)


@router.delete("/{terms_id}", status_code=204)
async def delete_terms(request: Request, terms_id: str, admin: Deleter) -> Response:
    """The policy goes, with its acceptance history."""
    await container(request).terms.delete(admin.org_id, terms_id, admin.scope(Permission.TERMS_AND_CONDITIONS_DELETE))
    return Response(status_code=204)


@router.post("/{terms_id}/assign")
async def assign_terms(
    request: Request,
    terms_id: str,
    admin: Assigner,
    termsAndConditionsAssignments: Annotated[list[dict[str, Any]], Body(embed=True, max_length=200)],
) -> dict[str, Any]:
    """Replace the assignments: all users (`allLicensedUsersAssignmentTarget`), groups, excluded groups."""
    row = await container(request).terms.assign(
        admin.org_id, terms_id, admin.scope(Permission.TERMS_AND_CONDITIONS_ASSIGN), termsAndConditionsAssignments
    )
    return {"value": graph_assignments(row)}


@router.get("/{terms_id}/assignments", dependencies=[ODATA_QUERY_OPTIONS])
async def list_terms_assignments(request: Request, terms_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.TERMS_AND_CONDITIONS_READ)
    row = await container(request).terms.get(admin.org_id, terms_id, scope)
    return _ASSIGNMENTS.response(request, graph_assignments(row))


@router.get("/{terms_id}/acceptanceStatuses", dependencies=[ODATA_QUERY_OPTIONS])
async def list_acceptance_statuses(request: Request, terms_id: str, admin: Reader) -> dict[str, Any]:
    """TC-07: each user's latest acceptance, and whether it is of the current version (`acceptedLatest`)."""
    scope = admin.scope(Permission.TERMS_AND_CONDITIONS_READ)
    row, latest = await container(request).terms.latest_acceptances(admin.org_id, terms_id, scope)
    return _ACCEPTANCES.response(request, [graph_acceptance(row, acceptance) for acceptance in latest])


@router.get("/{terms_id}/acceptanceStatuses/export")
async def export_acceptance_statuses(request: Request, terms_id: str, admin: Reader) -> Response:
    """TC-07 export, as CSV: every acceptance (who accepted which version when), oldest first."""
    scope = admin.scope(Permission.TERMS_AND_CONDITIONS_READ)
    row, history = await container(request).terms.acceptances(admin.org_id, terms_id, scope)
    return Response(
        report_csv(history, row.version),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="terms-{row.id}-acceptances.csv"'},
    )
