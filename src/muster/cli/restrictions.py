"""`muster restrictions`: enrollment platform and device limit restrictions, over the admin API."""

from __future__ import annotations

from typing import Any

import typer

from muster.cli.api import DM, call, collection, patch, present, show, show_one
from muster.domain.enrollment_restrictions import DEFAULT_RESTRICTION_PROPERTIES, RestrictionPlatform

restrictions = typer.Typer(help="Enrollment restrictions: device platforms and device limits.", no_args_is_help=True)
PATH = f"{DM}/deviceEnrollmentConfigurations"
PLATFORM_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration"
LIMIT_TYPE = "#microsoft.graph.deviceEnrollmentLimitConfiguration"
_PLATFORM_HELP = "ios, mac, windows, android (device administrator) or androidForWork (work profile)."
_SCOPE_TAG = typer.Option([], "--scope-tag", "-t", help="A scope tag id (repeat for several).")
_BLOCK = typer.Option(None, "--block/--allow", help="Block or allow the platform.")
_PERSONAL = typer.Option(None, "--block-personal/--allow-personal", help="Block or allow personally owned devices.")
_MIN_OS = typer.Option(None, "--min-os", help="Lowest OS version allowed (not macOS), e.g. 16.0 or 10.0.22631.0.")
_MAX_OS = typer.Option(None, "--max-os", help="Highest OS version allowed (not macOS).")
_MANUFACTURER = typer.Option([], "--block-manufacturer", help="Android: a manufacturer to block (repeat).")


def register(app: typer.Typer) -> None:
    app.add_typer(restrictions, name="restrictions")


def _restriction(
    block: bool | None, personal: bool | None, min_os: str | None, max_os: str | None, manufacturers: list[str]
) -> dict[str, Any]:
    found = present(
        platformBlocked=block,
        personalDeviceEnrollmentBlocked=personal,
        osMinimumVersion=min_os,
        osMaximumVersion=max_os,
    )
    if manufacturers:
        found["blockedManufacturers"] = manufacturers
    return found


@restrictions.command("list")
def list_restrictions(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every restriction you can see, by type and priority (the default of each type shows priority 0)."""
    rows = collection(PATH, {"$orderby": "deviceEnrollmentConfigurationType,platformType,priority"})
    show(rows, as_json, ["id", "displayName", "deviceEnrollmentConfigurationType", "platformType", "priority"])


@restrictions.command("show")
def show_restriction(restriction_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One restriction, its settings and its assignments."""
    item = call("GET", f"{PATH}/{restriction_id}").json()
    item["assignments"] = [a["target"] for a in collection(f"{PATH}/{restriction_id}/assignments")]
    show_one(item, as_json)


@restrictions.command("create-platform")
def create_platform(
    name: str,
    platform: RestrictionPlatform = typer.Option(..., "--platform", help=_PLATFORM_HELP),
    description: str = typer.Option(None, help="What the restriction is for."),
    block: bool = _BLOCK,
    personal: bool = _PERSONAL,
    min_os: str = _MIN_OS,
    max_os: str = _MAX_OS,
    manufacturer: list[str] = _MANUFACTURER,
    scope_tag: list[str] = _SCOPE_TAG,
) -> None:
    """Create a device platform restriction (placed just above the default; assign it to take effect)."""
    body = {
        "@odata.type": PLATFORM_TYPE,
        "displayName": name,
        "description": description,
        "platformType": platform.value,
        "platformRestriction": _restriction(block, personal, min_os, max_os, manufacturer),
        **({"roleScopeTagIds": scope_tag} if scope_tag else {}),
    }
    typer.echo(call("POST", PATH, json=body).json()["id"])


@restrictions.command("create-limit")
def create_limit(
    name: str,
    limit: int = typer.Option(..., "--limit", help="Devices a user can enroll, 1 to 15."),
    description: str = typer.Option(None, help="What the restriction is for."),
    scope_tag: list[str] = _SCOPE_TAG,
) -> None:
    """Create a device limit restriction (placed just above the default; assign it to take effect)."""
    body = {"@odata.type": LIMIT_TYPE, "displayName": name, "description": description, "limit": limit}
    if scope_tag:
        body["roleScopeTagIds"] = scope_tag
    typer.echo(call("POST", PATH, json=body).json()["id"])


@restrictions.command("update")
def update_restriction(
    restriction_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    description: str = typer.Option(None, help="What the restriction is for."),
    limit: int = typer.Option(None, "--limit", help="Device limit restrictions: 1 to 15."),
    platform: RestrictionPlatform = typer.Option(None, "--platform", help=f"The default only: {_PLATFORM_HELP}"),
    block: bool = _BLOCK,
    personal: bool = _PERSONAL,
    min_os: str = _MIN_OS,
    max_os: str = _MAX_OS,
    manufacturer: list[str] = _MANUFACTURER,
) -> None:
    """Change a restriction (new enrollments only). For the default platform restriction, name the platform."""
    body: dict[str, Any] = present(displayName=name, description=description, limit=limit)
    settings = _restriction(block, personal, min_os, max_os, manufacturer)
    if settings:
        key = DEFAULT_RESTRICTION_PROPERTIES[platform] if platform else "platformRestriction"
        body[key] = settings
    patch(f"{PATH}/{restriction_id}", body)
    typer.echo(f"updated restriction {restriction_id}")


@restrictions.command("delete")
def delete_restriction(restriction_id: str) -> None:
    """Delete a restriction (not a default); the ones below it move up."""
    call("DELETE", f"{PATH}/{restriction_id}")
    typer.echo(f"deleted restriction {restriction_id}")


@restrictions.command("assign")
def assign_restriction(
    restriction_id: str,
    group: list[str] = typer.Option([], "--group", "-g", help="A group to include (repeat)."),
    exclude_group: list[str] = typer.Option([], "--exclude-group", help="A group to exclude (repeat)."),
    all_users: bool = typer.Option(False, "--all-users", help="Include every user."),
    filter_id: str = typer.Option(None, "--filter", help="An assignment filter for the included targets."),
    filter_mode: str = typer.Option("include", "--filter-mode", help="include or exclude."),
) -> None:
    """Replace the restriction's assignments (none: it has no effect)."""
    narrowed = {"deviceAndAppManagementAssignmentFilterId": filter_id} if filter_id else {}
    if filter_id:
        narrowed["deviceAndAppManagementAssignmentFilterType"] = filter_mode
    targets = [{"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g, **narrowed} for g in group]
    if all_users:
        targets.append({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget", **narrowed})
    targets += [{"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": g} for g in exclude_group]
    body = {"enrollmentConfigurationAssignments": [{"target": target} for target in targets]}
    call("POST", f"{PATH}/{restriction_id}/assign", json=body)
    typer.echo(f"assigned restriction {restriction_id} to {len(targets)} target(s)")


@restrictions.command("set-priority")
def set_priority(restriction_id: str, priority: int) -> None:
    """Move a restriction to PRIORITY in its list (1 is the highest); the others keep their order."""
    call("POST", f"{PATH}/{restriction_id}/setPriority", json={"priority": priority})
    typer.echo(f"restriction {restriction_id} now has priority {priority}")
