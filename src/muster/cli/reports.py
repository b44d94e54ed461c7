"""`muster reports`: the enrollment reports over the admin API (failures, one failure's details, a device's
Enrollment page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from muster.cli.api import DM, call, show, show_one

reports = typer.Typer(help="Enrollment reports: failures and the policies applied to a device.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(reports, name="reports")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@reports.command("enrollment-failures")
def enrollment_failures(
    user: str = typer.Option(None, help="Only this user's failures (user principal name)."),
    top: int = typer.Option(50, min=1, max=1000, help="How many failures (newest first)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Enrollment failures, newest first: date, reason, OS, OS version, user and method (R-213)."""
    params = {"$top": str(top)}
    if user:
        params["$filter"] = f"userPrincipalName eq {_quoted(user)}"
    failures = call("GET", f"{DM}/enrollmentFailures", params=params).json()["value"]
    columns = ["occurredDateTime", "failureReason", "operatingSystem", "osVersion", "userPrincipalName"]
    show(failures, as_json, [*columns, "enrollmentMethod", "id"])


@reports.command("enrollment-failure")
def enrollment_failure(failure_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One failure's details and recommended steps; its id is the activity id a user quotes to support."""
    show_one(call("GET", f"{DM}/enrollmentFailures/{failure_id}").json(), as_json)


@reports.command("device-enrollment")
def device_enrollment(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A device's Enrollment page: the restrictions evaluated when it first enrolled (R-216)."""
    rows = call("GET", f"{DM}/managedDevices/{device_id}/enrollmentPolicyEvaluations").json()["value"]
    columns = ["profileName", "userPrincipalName", "profileType", "state", "filterResult", "priority", "target"]
    show(rows, as_json, columns)


@reports.command("incomplete-enrollments")
def incomplete_enrollments(
    days: int = typer.Option(14, min=1, max=30, help="How many days back (IER-04: at most 30)."),
    operating_system: str = typer.Option(None, "--os", help="iOS or Android (IER-03)."),
    section: str = typer.Option(None, help="Setup checklist, Platform screens, Terms of use, Compliance/Activation."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Incomplete user enrollments: initiated, incomplete, rate, and where each attempt stopped (IER-04..07)."""
    start = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    filters = {"operatingSystem": operating_system, "section": section}
    params = {"from": start, **{name: value for name, value in filters.items() if value}}
    report = call("GET", f"{DM}/reports/incompleteUserEnrollments", params=params).json()
    if as_json:
        show(report, True)
        return
    rate = f"{report['incompleteRate']:.0%}"
    typer.echo(f"Initiated {report['initiatedEnrollments']}, incomplete {report['incompleteEnrollments']} ({rate})")
    columns = ["startedDateTime", "userPrincipalName", "operatingSystem", "section", "actionName", "action"]
    show(report["value"], False, columns)
