"""`muster users` and `muster groups`: the directory over the admin API (Graph `users` and `groups`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from muster.cli.api import call, collection, console, patch, present, show, show_one

GRAPH = "/graph/beta"
UPLOAD_CHUNK = 64 * 1024

users = typer.Typer(help="Directory users.", no_args_is_help=True)
groups = typer.Typer(help="Directory groups (assigned or dynamic).", no_args_is_help=True)
members = typer.Typer(help="A group's members.", no_args_is_help=True)
groups.add_typer(members, name="members")
_RULE_HELP = "Dynamic membership rule, e.g. 'device.deviceCategory -eq \"HR\"'"


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="users")
    app.add_typer(groups, name="groups")


def _listing(path: str, odata_filter: str | None, top: int) -> list[dict[str, Any]]:
    params: dict[str, str] = {"$top": str(top)}
    if odata_filter:
        params["$filter"] = odata_filter
    return collection(path, params)


@users.command("list")
def list_users(
    odata_filter: str = typer.Option(None, "--filter", help="OData, e.g. \"department eq 'Sales'\""),
    top: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Users, oldest first."""
    rows = _listing(f"{GRAPH}/users", odata_filter, top)
    show(rows, as_json, ["id", "userPrincipalName", "displayName", "department", "accountEnabled"])


@users.command("show")
def show_user(
    user: str = typer.Argument(..., help="Id or userPrincipalName."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One user and the groups it is in."""
    found = call("GET", f"{GRAPH}/users/{user}").json()
    found["memberOf"] = [g["displayName"] for g in collection(f"{GRAPH}/users/{found['id']}/memberOf")]
    show_one(found, as_json)


@users.command("create")
def create_user(
    user_principal_name: str,
    display_name: str = typer.Option(None),
    given_name: str = typer.Option(None),
    surname: str = typer.Option(None),
    mail: str = typer.Option(None),
    department: str = typer.Option(None),
    job_title: str = typer.Option(None),
) -> None:
    """Create a user; prints its id."""
    body = {
        "userPrincipalName": user_principal_name,
        "displayName": display_name,
        "givenName": given_name,
        "surname": surname,
        "mail": mail,
        "department": department,
        "jobTitle": job_title,
    }
    typer.echo(call("POST", f"{GRAPH}/users", json={k: v for k, v in body.items() if v is not None}).json()["id"])


@users.command("update")
def update_user(
    user: str = typer.Argument(..., help="Id or userPrincipalName."),
    user_principal_name: str = typer.Option(None, "--upn", help="A new userPrincipalName."),
    display_name: str = typer.Option(None),
    given_name: str = typer.Option(None),
    surname: str = typer.Option(None),
    mail: str = typer.Option(None),
    department: str = typer.Option(None),
    job_title: str = typer.Option(None),
    enabled: bool = typer.Option(None, "--enabled/--disabled", help="Whether the account may sign in and enroll."),
) -> None:
    """Change some of a user's properties (the others stay as they are)."""
    body = present(
        userPrincipalName=user_principal_name,
        displayName=display_name,
        givenName=given_name,
        surname=surname,
        mail=mail,
        department=department,
        jobTitle=job_title,
        accountEnabled=enabled,
    )
    patch(f"{GRAPH}/users/{user}", body)
    typer.echo(f"{user} updated")


@users.command("delete")
def delete_user(user: str = typer.Argument(..., help="Id or userPrincipalName.")) -> None:
    """Delete a user (to keep its history and devices' link, disable it instead)."""
    call("DELETE", f"{GRAPH}/users/{user}")
    typer.echo(f"{user} deleted")


@users.command("set-password")
def set_password(
    user: str = typer.Argument(..., help="Id or userPrincipalName."),
    password_file: Path = typer.Option(
        None, "--password-file", exists=True, dir_okay=False, help="Read the password from this file (else: prompt)."
    ),
    require_totp: bool = typer.Option(False, "--require-totp", help="Also require an authenticator code (TOTP)."),
    reset_totp: bool = typer.Option(False, "--reset-totp", help="Forget the enrolled authenticator."),
) -> None:
    """Set the user's local sign-in password (never shown or logged), and whether TOTP is required."""
    if password_file is not None:
        password = password_file.read_text().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    body = {"newPassword": password, "requireTotp": require_totp, "resetTotp": reset_totp}
    call("POST", f"{GRAPH}/users/{user}/setPassword", json=body)
    typer.echo(f"password set for {user}")


@users.command("disable")
def disable_user(user: str = typer.Argument(..., help="Id or userPrincipalName.")) -> None:
    """Disable a user's account: it can no longer sign in or enroll; its devices and history stay."""
    call("PATCH", f"{GRAPH}/users/{user}", json={"accountEnabled": False})
    typer.echo(f"{user} disabled")


@users.command("import")
def import_users(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Create or update users from a CSV file (see docs/directory.md); all rows or none."""
    data = file.read_bytes()
    with Progress(TextColumn("uploading {task.description}"), BarColumn(), DownloadColumn(), console=console) as bar:
        task = bar.add_task(file.name, total=len(data))

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(data), UPLOAD_CHUNK):
                yield data[start : start + UPLOAD_CHUNK]
                bar.advance(task, len(data[start : start + UPLOAD_CHUNK]))

        result = call("POST", f"{GRAPH}/users/importCsv", content=chunks(), headers={"Content-Type": "text/csv"})
    counts = result.json()
    typer.echo(
        f"{counts['rowCount']} rows: {counts['createdCount']} created, {counts['updatedCount']} updated, "
        f"{counts['unchangedCount']} unchanged; {counts['membershipsAddedCount']} group memberships added"
    )


@groups.command("list")
def list_groups(
    odata_filter: str = typer.Option(None, "--filter", help="OData, e.g. \"startswith(displayName,'Sales')\""),
    top: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Groups, oldest first."""
    rows = _listing(f"{GRAPH}/groups", odata_filter, top)
    for row in rows:
        row["membership"] = "dynamic" if row["groupTypes"] else "assigned"
    show(rows, as_json, ["id", "displayName", "membership", "membershipRule"])


@groups.command("show")
def show_group(group_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One group and its members."""
    group = call("GET", f"{GRAPH}/groups/{group_id}").json()
    group["members"] = collection(f"{GRAPH}/groups/{group_id}/members")
    if as_json:
        show(group, True)
        return
    typer.echo(f"{group['displayName']} ({'dynamic' if group['groupTypes'] else 'assigned'})")
    if group["membershipRule"]:
        typer.echo(f"rule: {group['membershipRule']}")
    for member in group["members"]:
        kind = member["@odata.type"].rsplit(".", 1)[-1]
        typer.echo(f"  {kind} {member['id']} {member.get('userPrincipalName') or member.get('displayName') or ''}")


@groups.command("create")
def create_group(
    display_name: str,
    description: str = typer.Option(None),
    rule: str = typer.Option(None, help=_RULE_HELP),
) -> None:
    """Create an assigned group, or a dynamic one with --rule; prints its id."""
    body: dict[str, Any] = {"displayName": display_name, "description": description}
    if rule:
        body |= {"groupTypes": ["DynamicMembership"], "membershipRule": rule}
    typer.echo(call("POST", f"{GRAPH}/groups", json=body).json()["id"])


@groups.command("update")
def update_group(
    group_id: str,
    display_name: str = typer.Option(None, "--name", help="A new display name."),
    description: str = typer.Option(None),
    rule: str = typer.Option(None, help=_RULE_HELP + "; makes the group dynamic."),
    assigned: bool = typer.Option(False, "--assigned", help="Make the group assigned (drops its rule)."),
) -> None:
    """Rename a group, change its description, or switch it between a dynamic rule and assigned members."""
    if rule and assigned:
        typer.secho("Give --rule or --assigned, not both.", err=True, fg="red")
        raise typer.Exit(2)
    body: dict[str, Any] = present(displayName=display_name, description=description)
    if rule:
        body |= {"groupTypes": ["DynamicMembership"], "membershipRule": rule}
    if assigned:
        body |= {"groupTypes": [], "membershipRule": None}
    patch(f"{GRAPH}/groups/{group_id}", body)
    typer.echo(f"{group_id} updated")


@groups.command("delete")
def delete_group(group_id: str) -> None:
    """Delete a group (role assignments and policies that target it stop applying)."""
    call("DELETE", f"{GRAPH}/groups/{group_id}")
    typer.echo(f"{group_id} deleted")


@members.command("list")
def list_members(
    group_id: str,
    transitive: bool = typer.Option(False, "--transitive", help="Include the members of nested groups."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A group's members (users, devices, groups)."""
    rows = collection(f"{GRAPH}/groups/{group_id}/{'transitiveMembers' if transitive else 'members'}")
    for row in rows:
        row["type"] = row["@odata.type"].rsplit(".", 1)[-1]
        row["name"] = row.get("userPrincipalName") or row.get("displayName") or ""
    show(rows, as_json, ["id", "type", "name"])


@members.command("add")
def add_member(group_id: str, member_id: str = typer.Argument(..., help="A user, device or group id.")) -> None:
    """Add a member to an assigned group."""
    reference = {"@odata.id": f"https://graph.microsoft.com/beta/directoryObjects/{member_id}"}
    call("POST", f"{GRAPH}/groups/{group_id}/members/$ref", json=reference)
    typer.echo(f"{member_id} added")


@members.command("remove")
def remove_member(group_id: str, member_id: str) -> None:
    """Remove a member from an assigned group."""
    call("DELETE", f"{GRAPH}/groups/{group_id}/members/{member_id}/$ref")
    typer.echo(f"{member_id} removed")
