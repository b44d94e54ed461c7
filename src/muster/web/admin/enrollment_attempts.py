"""The Incomplete user enrollments report (seed-catalog-A §2.9 IER-04..07), a Muster-only resource in Graph style:
`GET .../reports/incompleteUserEnrollments?from=&to=&operatingSystem=&section=`.

`from` and `to` take an ISO 8601 date (a whole day: `to` includes it) or date-time; without them the report covers
the past two weeks, and it never reaches more than 30 days back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from muster.domain.enrollment_attempts import IncompleteRow, Platform, Report, Section
from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/reports", tags=["enrollmentReports"])

ReportReader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]

# IER-03 (003:1137): the operating systems the report covers, by the names an admin may give.
OPERATING_SYSTEMS = {
    "ios": Platform.IOS,
    "ipados": Platform.IOS,
    "ios/ipados": Platform.IOS,
    "android": Platform.ANDROID,
}
SECTIONS = {section.value.casefold(): section for section in Section}
# A misspelt filter (`os=`) must not silently widen the report.
QUERY_PARAMETERS = frozenset({"from", "to", "operatingSystem", "section"})


def _moment(value: str | None, name: str, *, end: bool) -> datetime | None:
    """An ISO date or date-time; a date is its whole day, so an end date includes that day."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(f"'{name}' must be an ISO 8601 date or date-time, such as 2026-11-02.") from error
    if moment.tzinfo is None:
        raise InvalidInput(f"'{name}' must give its time zone (for example a trailing Z).")
    return moment.astimezone(UTC)


def _choice(value: str | None, choices: dict[str, Any], name: str) -> Any:
    if value is None:
        return None
    found = choices.get(value.casefold())
    if found is None:
        raise InvalidInput(f"'{name}' must be one of: {', '.join(sorted({str(c) for c in choices.values()}))}.")
    return found


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_row(row: IncompleteRow) -> dict[str, Any]:
    """One incomplete enrollment (E27): who, when, where it stopped and how (IER-07)."""
    return {
        "id": row.attempt.id,
        "userPrincipalName": row.attempt.user_principal_name,
        "startedDateTime": _time(row.attempt.started_at),
        "lastStepDateTime": _time(row.attempt.screen_at),
        "operatingSystem": row.attempt.platform.value,
        "section": row.abandonment.section.value,
        "actionName": row.abandonment.action_name,
        "action": row.abandonment.action,
    }


def graph_report(report: Report) -> dict[str, Any]:
    return {
        "@odata.type": "#muster.incompleteUserEnrollmentsReport",
        "initiatedEnrollments": report.initiated,
        "incompleteEnrollments": len(report.incomplete),
        "incompleteRate": round(report.incomplete_rate, 4),
        "daily": [
            {"date": day.isoformat(), "section": section.value, "count": count} for day, section, count in report.daily
        ],
        "value": [graph_row(row) for row in report.incomplete],
    }


@router.get("/incompleteUserEnrollments")
async def incomplete_user_enrollments(
    request: Request,
    admin: ReportReader,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    operating_system: Annotated[str | None, Query(alias="operatingSystem", max_length=40)] = None,
    section: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Initiated and incomplete enrollments, the incomplete rate, daily counts per section and the incomplete
    attempts, newest first (IER-04..07)."""
    unknown = sorted(set(request.query_params) - QUERY_PARAMETERS)
    if unknown:
        raise InvalidInput(
            f"Unknown query parameter '{unknown[0]}': this report takes {', '.join(sorted(QUERY_PARAMETERS))}."
        )
    report = await container(request).enrollment_attempts.incomplete_report(
        admin.org_id,
        start=_moment(start, "from", end=False),
        end=_moment(end, "to", end=True),
        platform=_choice(operating_system, OPERATING_SYSTEMS, "operatingSystem"),
        section=_choice(section, SECTIONS, "section"),
    )
    return graph_report(report)
