"""`muster roles`: Intune roles, role assignments and scope tags, over the admin API."""

from __future__ import annotations

import typer

from muster.cli.api import DM, call, collection, show

roles = typer.Typer(help="Roles, role assignments and scope tags (Intune RBAC).", no_args_is_help=True)
tags = typer.Typer(help="Scope tags.", no_args_is_help=True)
roles.add_typer(tags, name="tags")


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
    permission: list[str] = typer.Option(..., "--permission", "-p", help="e.g. Microsoft.Intune_ManagedDevices_Read"),
    description: str = typer.Option(None, help="What the role is for."),
) -> None:
    """Create a custom role from permissions (you can only grant permissions you hold)."""
    body = {
        "displayName": name,
        "description": description,
        "rolePermissions": [{"resourceActions": [{"allowedResourceActions": permission}]}],
    }
    typer.echo(call("POST", f"{DM}/roleDefinitions", json=body).json()["id"])


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


@roles.command("assignments")
def list_assignments(as_json: bool = typer.Option(False, "--json")) -> None:
    """Role assignments: who holds which role over which scope tags."""
    rows = collection(f"{DM}/roleAssignments")
    for row in rows:
        row["scopeTags"] = "all" if row["allScopeTags"] else ",".join(row["roleScopeTagIds"])
        row["memberIds"] = ",".join(row["members"])
    show(rows, as_json, ["id", "displayName", "roleDefinitionId", "memberIds", "scopeTags"])


@tags.command("list")
def list_tags(as_json: bool = typer.Option(False, "--json")) -> None:
    """Scope tags."""
    show(collection(f"{DM}/roleScopeTags"), as_json, ["id", "displayName", "isBuiltIn", "description"])


@tags.command("create")
def create_tag(name: str, description: str = typer.Option(None)) -> None:
    """Create a scope tag; prints its id."""
    body = {"displayName": name, "description": description}
    typer.echo(call("POST", f"{DM}/roleScopeTags", json=body).json()["id"])


@tags.command("delete")
def delete_tag(tag_id: str) -> None:
    """Delete a scope tag that no object or role assignment uses."""
    call("DELETE", f"{DM}/roleScopeTags/{tag_id}")
    typer.echo(f"deleted scope tag {tag_id}")
