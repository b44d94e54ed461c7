"""`muster categories`: device categories (Graph `deviceCategories`) and a device's category, over the admin API."""

from __future__ import annotations

import typer

from muster.cli.api import DM, call, collection, patch, present, show

categories = typer.Typer(
    help="Device categories (e.g. HR, Sales), usable in dynamic device groups.", no_args_is_help=True
)
CATEGORIES = f"{DM}/deviceCategories"
_TAG_HELP = "A scope tag id (none: the Default tag, or your own tags)."


def register(app: typer.Typer) -> None:
    app.add_typer(categories, name="categories")


@categories.command("list")
def list_categories(as_json: bool = typer.Option(False, "--json")) -> None:
    """Device categories you can see."""
    show(collection(CATEGORIES), as_json, ["id", "displayName", "description", "roleScopeTagIds"])


@categories.command("create")
def create_category(
    name: str,
    description: str = typer.Option(None, help="What the category is for."),
    tag: list[str] = typer.Option([], "--tag", "-t", help=_TAG_HELP),
) -> None:
    """Create a category (names are unique, ignoring case)."""
    body = present(displayName=name, description=description) | ({"roleScopeTagIds": tag} if tag else {})
    typer.echo(call("POST", CATEGORIES, json=body).json()["id"])


@categories.command("update")
def update_category(
    category_id: str,
    name: str = typer.Option(None, "--name", help="A new name (dynamic group rules testing the old one are named)."),
    description: str = typer.Option(None, help="What the category is for."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Replaces the scope tags."),
) -> None:
    """Rename a category or change its description or scope tags."""
    body = present(displayName=name, description=description) | ({"roleScopeTagIds": tag} if tag else {})
    updated = patch(f"{CATEGORIES}/{category_id}", body).json()
    typer.echo(f"updated device category {category_id}")
    for warning in updated.get("warnings", []):
        typer.secho(f"warning: {warning}", fg="yellow")


@categories.command("delete")
def delete_category(category_id: str) -> None:
    """Delete a category; its devices become Unassigned."""
    call("DELETE", f"{CATEGORIES}/{category_id}")
    typer.echo(f"deleted device category {category_id}")


@categories.command("set-device")
def set_device_category(
    device_id: str,
    category_id: str = typer.Argument(None, help="The category; leave out with --clear."),
    clear: bool = typer.Option(False, "--clear", help="Make the device Unassigned."),
) -> None:
    """Set (or clear) a managed device's category."""
    reference = f"{DM}/managedDevices/{device_id}/deviceCategory/$ref"
    if clear == (category_id is not None):
        typer.secho("Give a category id, or --clear.", err=True, fg="red")
        raise typer.Exit(2)
    if clear:
        call("DELETE", reference)
        typer.echo(f"device {device_id} is now Unassigned")
        return
    call("PUT", reference, json={"@odata.id": f"{CATEGORIES}/{category_id}"})
    typer.echo(f"device {device_id} is now in category {category_id}")
