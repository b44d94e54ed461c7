"""`muster dem`: device enrollment managers (DEM), the accounts that enroll many shared devices."""

from __future__ import annotations

import typer

from muster.cli.api import DM, call, collection, show

dem = typer.Typer(help="Device enrollment managers (at most 150, non-administrator users).", no_args_is_help=True)
DEMS = f"{DM}/deviceEnrollmentManagers"


def register(app: typer.Typer) -> None:
    app.add_typer(dem, name="dem")


@dem.command("list")
def list_managers(as_json: bool = typer.Option(False, "--json")) -> None:
    """Device enrollment managers and how many enrolled devices each has."""
    show(collection(DEMS), as_json, ["userPrincipalName", "displayName", "enrolledDeviceCount", "addedDateTime"])


@dem.command("add")
def add_manager(user_principal_name: str) -> None:
    """Make a directory user (enabled, not an administrator) a device enrollment manager."""
    added = call("POST", DEMS, json={"userPrincipalName": user_principal_name}).json()
    typer.echo(f"{added['userPrincipalName']} is a device enrollment manager")


@dem.command("remove")
def remove_manager(user_principal_name: str) -> None:
    """Stop a user being a device enrollment manager (the devices it enrolled stay enrolled)."""
    wanted = user_principal_name.lower()
    found = next((m for m in collection(DEMS) if m["userPrincipalName"].lower() == wanted), None)
    if found is None:
        typer.secho(f"{user_principal_name} is not a device enrollment manager", err=True, fg="red")
        raise typer.Exit(1)
    call("DELETE", f"{DEMS}/{found['id']}")
    typer.echo(f"{found['userPrincipalName']} is no longer a device enrollment manager")
