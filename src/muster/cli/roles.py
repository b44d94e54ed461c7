"""`muster roles`: Intune roles, role assignments and scope tags, over the admin API."""

from __future__ import annotations

from typing import Any

import typer

from muster.cli.api import DM, call, collection, patch, present, show, show_one

roles = typer.Typer(help="Roles, role assignments and scope tags (Intune RBAC).", no_args_is_help=True)
tags = typer.Typer(help="Scope tags.", no_args_is_help=True)
assignments = typer.Typer(help="Role assignments; with no command, lists them.")
roles.add_typer(tags, name="tags")
roles.add_typer(assignments, name="assignments")
_PERMISSION_HELP = "e.g. Microsoft.Intune_ManagedDevices_Read"


def register(app: typer.Typer) -> None:
    app.add_typer(roles, name="roles")


def _allowed(role: dict[str, object]) -> list[str]:
    permissions = role["rolePermissions"]
    assert isinstance(permissions, list)
    return [a for p in permissions for r in p["resourceActions"] for a in r["allowedResourceActions"]]


@roles.command("list")
def list_roles(as_json: bool = typer.Option(False, "--json")) -> None:
    """Built-in and custom roles."""
    rows = collection(f"{DM}/roleDefinitions")
    show(rows, as_json, ["id", "displayName", "isBuiltIn", "description"])


@roles.command("show")
def show_role(role_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One role and its permissions."""
    role = call("GET", f"{DM}/roleDefinitions/{role_id}").json()
    if as_json:
        show(role, True)
        return
    typer.echo(f"{role['displayName']}{' (built-in)' if role['isBuiltIn'] else ''}")
    for permission in _allowed(role):
        typer.echo(f"  {permission}")


@roles.command("create")
def create_role(
    name: str,
    permission: list[str] = typer.Option(..., "--permission", "-p", help=_PERMISSION_HELP),
    description: str = typer.Option(None, help="What the role is for."),
) -> None:
    """Create a custom role from permissions (you can only grant permissions you hold)."""
    body = {
        "displayName": name,
        "description": description,
        "rolePermissions": [{"resourceActions": [{"allowedResourceActions": permission}]}],
    }
    typer.echo(call("POST", f"{DM}/roleDefinitions", json=body).json()["id"])


@roles.command("update")
def update_role(
    role_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    description: str = typer.Option(None, help="What the role is for."),
    permission: list[str] = typer.Option(
        [], "--permission", "-p", help=f"Replaces all permissions; {_PERMISSION_HELP}"
    ),
) -> None:
    """Change a custom role (built-in roles cannot change)."""
    body: dict[str, Any] = present(displayName=name, description=description)
    if permission:
        body["rolePermissions"] = [{"resourceActions": [{"allowedResourceActions": permission}]}]
    patch(f"{DM}/roleDefinitions/{role_id}", body)
    typer.echo(f"updated role {role_id}")


@roles.command("delete")
def delete_role(role_id: str) -> None:
    """Delete a custom role that no assignment uses."""
    call("DELETE", f"{DM}/roleDefinitions/{role_id}")
    typer.echo(f"deleted role {role_id}")


@roles.command("assign")
def assign_role(
    role_id: str,
    member: list[str] = typer.Option(..., "--member", "-m", help="A user, group or API client id."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="A scope tag id (none: the Default tag)."),
    all_tags: bool = typer.Option(False, "--all-tags", help="Over every scope tag."),
    scope_group: list[str] = typer.Option([], "--scope-group", help="A scope group id."),
    name: str = typer.Option(None, help="The assignment's name (default: the role's)."),
) -> None:
    """Assign a role to members over scope tags."""
    if all_tags and tag:
        typer.secho("Give --tag or --all-tags, not both.", err=True, fg="red")
        raise typer.Exit(2)
    role = call("GET", f"{DM}/roleDefinitions/{role_id}").json()
    body = {
        "displayName": name or role["displayName"],
        "roleDefinitionId": role_id,
        "members": member,
        "scopeMembers": scope_group,
        "roleScopeTagIds": tag,
        "allScopeTags": all_tags,
    }
    typer.echo(call("POST", f"{DM}/roleAssignments", json=body).json()["id"])


def _assignment_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["scopeTags"] = "all" if row["allScopeTags"] else ",".join(row["roleScopeTagIds"])
        row["memberIds"] = ",".join(row["members"])
    return rows


_ASSIGNMENT_COLUMNS = ["id", "displayName", "roleDefinitionId", "memberIds", "scopeTags"]


@assignments.command("list")
def list_assignments(as_json: bool = typer.Option(False, "--json")) -> None:
    """Role assignments: who holds which role over which scope tags."""
    show(_assignment_rows(collection(f"{DM}/roleAssignments")), as_json, _ASSIGNMENT_COLUMNS)


@assignments.callback(invoke_without_command=True)
def assignments_default(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Role assignments (`muster roles assignments` alone lists them, as `list` does)."""
    if ctx.invoked_subcommand is None:
        list_assignments(as_json)


@assignments.command("show")
def show_assignment(assignment_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One role assignment."""
    show_one(call("GET", f"{DM}/roleAssignments/{assignment_id}").json(), as_json)


@assignments.command("update")
def update_assignment(
    assignment_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    member: list[str] = typer.Option([], "--member", "-m", help="Replaces the members: user, group or API client ids."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Replaces the scope tags."),
    all_tags: bool = typer.Option(False, "--all-tags", help="Over every scope tag."),
    scope_group: list[str] = typer.Option([], "--scope-group", help="Replaces the scope groups."),
) -> None:
    """Change an assignment's name, members, scope tags or scope groups (you can grant only what you hold)."""
    if all_tags and tag:
        typer.secho("Give --tag or --all-tags, not both.", err=True, fg="red")
        raise typer.Exit(2)
    body: dict[str, Any] = present(displayName=name)
    body |= {"members": member} if member else {}
    body |= {"scopeMembers": scope_group} if scope_group else {}
    body |= {"roleScopeTagIds": tag, "allScopeTags": False} if tag else {}
    body |= {"allScopeTags": True} if all_tags else {}
    patch(f"{DM}/roleAssignments/{assignment_id}", body)
    typer.echo(f"updated assignment {assignment_id}")


@assignments.command("delete")
def delete_assignment(assignment_id: str) -> None:
    """Delete a role assignment: its members lose the role at once."""
    call("DELETE", f"{DM}/roleAssignments/{assignment_id}")
    typer.echo(f"deleted assignment {assignment_id}")


@tags.command("list")
def list_tags(as_json: bool = typer.Option(False, "--json")) -> None:
    """Scope tags."""
    show(collection(f"{DM}/roleScopeTags"), as_json, ["id", "displayName", "isBuiltIn", "description"])


@tags.command("show")
def show_tag(tag_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One scope tag."""
    show_one(call("GET", f"{DM}/roleScopeTags/{tag_id}").json(), as_json)


@tags.command("create")
def create_tag(name: str, description: str = typer.Option(None)) -> None:
    """Create a scope tag; prints its id."""
    body = {"displayName": name, "description": description}
    typer.echo(call("POST", f"{DM}/roleScopeTags", json=body).json()["id"])


@tags.command("update")
def update_tag(
    tag_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    description: str = typer.Option(None),
) -> None:
    """Rename a scope tag or change its description."""
    body = present(displayName=name, description=description)
    patch(f"{DM}/roleScopeTags/{tag_id}", body)
    typer.echo(f"updated scope tag {tag_id}")


@tags.command("delete")
def delete_tag(tag_id: str) -> None:
    """Delete a scope tag that no object or role assignment uses."""
    call("DELETE", f"{DM}/roleScopeTags/{tag_id}")
    typer.echo(f"deleted scope tag {tag_id}")


assignments.command("create", help="Assign a role to members over scope tags (as `muster roles assign`).")(assign_role)
