"""Enrollment reports (R-212..R-217): the Enrollment failures report (all users, or one with
`$filter=userPrincipalName eq '...'`), each failure's details with its recommended steps and activity id, and a
device's Enrollment page (the restrictions evaluated when it first enrolled). Muster-only resources in Graph style.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Permission, Principal, TaggedObject
from muster.protocols.odata import OrderBy, next_link, parse_query_options
from muster.web.admin.collections import ODATA_QUERY_OPTIONS
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=DEVICE_MANAGEMENT, tags=["enrollmentReports"])

NEWEST_FIRST = (OrderBy("occurredDateTime", descending=True),)
POLICY_TYPE_NAMES = {"platformRestriction": "Device type enrollment restriction", "limitRestriction": "Device limit"}

FAILURE_PROPERTIES = frozenset(
    {
        "id",
        "occurredDateTime",
        "userPrincipalName",
        "enrollmentMethod",
        "operatingSystem",
        "osVersion",
        "serialNumber",
        "stage",
        "reason",
        "failureReason",
        "failureDetails",
        "recommendedSteps",
        "policyEvaluations",
    }
)

ReportReader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_failure(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the Enrollment failures report, with its details (R-213, R-214)."""
    decision = row["decision"] or {}
    return {
        "@odata.type": "#muster.enrollmentFailure",
        "id": row["id"],  # the activity id a user quotes to support (003:7381 "Get Support")
        "occurredDateTime": _time(row["occurred_at"]),
        "userPrincipalName": row["user_principal_name"],
        "enrollmentMethod": row["enrollment_method"],
        "operatingSystem": row["operating_system"],
        "osVersion": row["os_version"],
        "serialNumber": row["serial_number"],
        "stage": row["stage"],
        "reason": row["reason"],
        "failureReason": row["failure_reason"] or row["reason"],
        "failureDetails": row["detail"],
        "recommendedSteps": row["remediation"],
        "policyEvaluations": [_evaluation(e, row["user_principal_name"]) for e in decision.get("evaluations", [])],
    }


def _evaluation(evaluation: dict[str, Any], user_principal_name: str | None) -> dict[str, Any]:
    """A row of the Enrollment page (R-216, R-217)."""
    return {
        "profileName": evaluation["displayName"],
        "policyId": evaluation["policyId"],
        "userPrincipalName": user_principal_name,
        "profileType": POLICY_TYPE_NAMES.get(evaluation["policyType"], evaluation["policyType"]),
        "state": evaluation["state"],
        "notApplicableReason": evaluation["notApplicableReason"],
        "filterId": evaluation["filterId"],
        "filterResult": evaluation["filterResult"],
        "priority": evaluation["priority"],
        "target": evaluation["target"],
    }


@router.get("/enrollmentFailures", dependencies=[ODATA_QUERY_OPTIONS])
async def list_enrollment_failures(request: Request, admin: ReportReader) -> dict[str, Any]:
    options = parse_query_options(dict(request.query_params))
    unknown = [name for name in options.select if name not in FAILURE_PROPERTIES]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    if not options.orderby:
        options = replace(options, orderby=NEWEST_FIRST)
    rows, token, total = await container(request).enrollment_records.failures_page(admin.org_id, options)
    page: dict[str, Any] = {"@odata.context": f"{request.base_url}graph/beta/$metadata#enrollmentFailures"}
    if total is not None:
        page["@odata.count"] = total
    failures = [graph_failure(row) for row in rows]
    if options.select:
        failures = [{k: v for k, v in item.items() if k in options.select or k.startswith("@")} for item in failures]
    page["value"] = failures
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


@router.get("/enrollmentFailures/{failure_id}")
async def get_enrollment_failure(request: Request, failure_id: str, admin: ReportReader) -> dict[str, Any]:
    row = await container(request).enrollment_records.failure(admin.org_id, failure_id)
    if row is None:
        raise NotFound(f"enrollment failure {failure_id} not found")
    return graph_failure(row)


@router.get("/managedDevices/{device_id}/enrollmentPolicyEvaluations")
async def device_enrollment_page(
    request: Request,
    device_id: str,
    admin: Annotated[
        Principal, Depends(require(Permission.MANAGED_DEVICES_READ, TaggedObject.MANAGED_DEVICE, "device_id"))
    ],
) -> dict[str, Any]:
    """The device's Enrollment page: the restrictions evaluated when it first enrolled (R-216)."""
    found = await container(request).enrollment_records.device_decision(admin.org_id, device_id)
    if found is None:
        raise NotFound(f"managed device {device_id} not found")
    decision = found["enrollment_decision"] or {}
    rows = [_evaluation(e, found["user_principal_name"]) for e in decision.get("evaluations", [])]
    return {"@odata.context": f"{request.base_url}graph/beta/$metadata#enrollmentPolicyEvaluations", "value": rows}
