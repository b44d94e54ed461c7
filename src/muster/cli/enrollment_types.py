"""`muster enrollment-types`: Apple enrollment type profiles (Device vs User Enrollment), over the admin API."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from urllib.parse import quote

import typer

from muster.cli.api import DM, call, collection, patch, present, show, show_one
from muster.domain.enrollment_type_profiles import USER_CHOICE, EnrollmentType, EnrollmentTypeSetting

enrollment_types = typer.Typer(
    help="Apple enrollment type profiles: Device Enrollment, User Enrollment or the user's choice.",
    no_args_is_help=True,
)
PATH = f"{DM}/appleUserInitiatedEnrollmentProfiles"


class TypeOption(StrEnum):
    DEVICE = "device"
    USER = "user"
    ACCOUNT_DRIVEN = "accountDrivenUserEnrollment"
    CHOICE = "choice"


_TYPE_HELP = (
    "device, user, accountDrivenUserEnrollment, or choice (the user says who owns the device: personal devices "
    "enroll with user enrollment, corporate ones with device enrollment)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(enrollment_types, name="enrollment-types")


def _setting(kind: TypeOption) -> dict[str, Any]:
    setting = USER_CHOICE if kind is TypeOption.CHOICE else EnrollmentTypeSetting(EnrollmentType(kind.value))
    return setting.to_graph()


@enrollment_types.command("list")
def list_profiles(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every profile you can see, by priority (1 applies first)."""
    rows = collection(PATH, {"$orderby": "priority"})
    show(rows, as_json, ["id", "displayName", "defaultEnrollmentType", "priority"])


@enrollment_types.command("show")
def show_profile(profile_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One profile, its settings and its assignments."""
    item = call("GET", f"{PATH}/{profile_id}").json()
    item["assignments"] = [a["target"] for a in collection(f"{PATH}/{profile_id}/assignments")]
    show_one(item, as_json)


@enrollment_types.command("create")
def create_profile(
    name: str,
    kind: TypeOption = typer.Option(TypeOption.DEVICE, "--type", help=_TYPE_HELP),
    description: str = typer.Option(None, help="What the profile is for (users don't see it)."),
    scope_tag: list[str] = typer.Option([], "--scope-tag", "-t", help="A scope tag id (repeat for several)."),
) -> None:
    """Create a profile (placed last in priority; assign it to take effect)."""
    body = {"displayName": name, "description": description, **_setting(kind)}
    if scope_tag:
        body["roleScopeTagIds"] = scope_tag
    typer.echo(call("POST", PATH, json=body).json()["id"])


@enrollment_types.command("update")
def update_profile(
    profile_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    description: str = typer.Option(None, help="What the profile is for."),
    kind: TypeOption = typer.Option(None, "--type", help=_TYPE_HELP),
) -> None:
    """Change a profile (new enrollments only)."""
    body: dict[str, Any] = present(displayName=name, description=description)
    if kind is not None:
        body.update(_setting(kind))
    patch(f"{PATH}/{profile_id}", body)
    typer.echo(f"updated enrollment type profile {profile_id}")


@enrollment_types.command("delete")
def delete_profile(profile_id: str) -> None:
    """Delete a profile; the ones below it move up."""
    call("DELETE", f"{PATH}/{profile_id}")
    typer.echo(f"deleted enrollment type profile {profile_id}")


@enrollment_types.command("assign")
def assign_profile(
    profile_id: str,
    group: list[str] = typer.Option([], "--group", "-g", help="A user group to include (repeat)."),
    exclude_group: list[str] = typer.Option([], "--exclude-group", help="A user group to exclude (repeat)."),
    all_users: bool = typer.Option(False, "--all-users", help="Include every user."),
) -> None:
    """Replace the profile's assignments (user groups only; none: it applies to nobody)."""
    targets = [{"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g} for g in group]
    if all_users:
        targets.append({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"})
    targets += [{"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": g} for g in exclude_group]
    body = {"appleEnrollmentProfileAssignments": [{"target": target} for target in targets]}
    call("POST", f"{PATH}/{profile_id}/assign", json=body)
    typer.echo(f"assigned enrollment type profile {profile_id} to {len(targets)} target(s)")


@enrollment_types.command("set-priority")
def set_priority(profile_id: str, priority: int) -> None:
    """Move a profile to PRIORITY (1 is the highest); the others keep their order."""
    call("POST", f"{PATH}/{profile_id}/setPriority", json={"priority": priority})
    typer.echo(f"enrollment type profile {profile_id} now has priority {priority}")


@enrollment_types.command("resolve")
def resolve(user_principal_name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Which profile applies to a user, and the enrollment types the user is offered."""
    quoted = quote(user_principal_name.replace("'", "''"), safe="@")
    show_one(call("GET", f"{PATH}/resolve(userPrincipalName='{quoted}')").json(), as_json)
