"""`muster filters`: assignment filters (Intune's device filter rules), over the admin API."""

from __future__ import annotations

from urllib.parse import quote

import typer

from muster.cli.api import DM, call, collection, pairs, patch, present, show, show_one

filters = typer.Typer(help="Assignment filters: device rules that narrow a policy's assignment.", no_args_is_help=True)
FILTERS = f"{DM}/assignmentFilters"
_PLATFORM_HELP = "android, androidForWork, iOS, macOS or windows10AndLater."
_RULE_HELP = 'e.g. (device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")'
_USAGE_HELP = "managedDevice (every property) or enrollment (what enrollment restrictions can read)."


def register(app: typer.Typer) -> None:
    app.add_typer(filters, name="filters")


@filters.command("list")
def list_filters(as_json: bool = typer.Option(False, "--json")) -> None:
    """The assignment filters within your scope."""
    show(collection(FILTERS), as_json, ["id", "displayName", "platform", "rule"])


@filters.command("show")
def show_filter(filter_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One assignment filter."""
    show_one(call("GET", f"{FILTERS}/{filter_id}").json(), as_json)


@filters.command("create")
def create_filter(
    name: str,
    platform: str = typer.Option(..., help=_PLATFORM_HELP),
    rule: str = typer.Option(..., help=_RULE_HELP),
    description: str = typer.Option(None, help="What the filter is for."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="A scope tag id (none: your own tags, or Default)."),
) -> None:
    """Create an assignment filter (its platform cannot change later)."""
    body = {
        "displayName": name,
        "platform": platform,
        "rule": rule,
        "description": description,
        "roleScopeTags": tag or None,
    }
    typer.echo(call("POST", FILTERS, json=body).json()["id"])


@filters.command("update")
def update_filter(
    filter_id: str,
    name: str = typer.Option(None, "--name", help="A new display name."),
    rule: str = typer.Option(None, help=_RULE_HELP),
    description: str = typer.Option(None, help="What the filter is for."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Replaces the scope tags."),
) -> None:
    """Change an assignment filter's name, rule, description or scope tags."""
    patch(
        f"{FILTERS}/{filter_id}",
        present(displayName=name, rule=rule, description=description, roleScopeTags=tag or None),
    )
    typer.echo(f"updated assignment filter {filter_id}")


@filters.command("delete")
def delete_filter(filter_id: str) -> None:
    """Delete an assignment filter."""
    call("DELETE", f"{FILTERS}/{filter_id}")
    typer.echo(f"deleted assignment filter {filter_id}")


@filters.command("validate")
def validate_rule(
    rule: str,
    platform: str = typer.Option(..., help=_PLATFORM_HELP),
    usage: str = typer.Option("managedDevice", help=_USAGE_HELP),
) -> None:
    """Check a rule without saving it; says what is wrong and where (exit code 1 when invalid)."""
    body = {"deviceAndAppManagementAssignmentFilter": {"platform": platform, "rule": rule}}
    result = call("POST", f"{FILTERS}/validateFilter", params={"usage": usage}, json=body).json()
    if not result["isValidRule"]:
        typer.secho(result["errorMessage"], err=True, fg="red")
        raise typer.Exit(1)
    typer.echo("the rule is valid")


@filters.command("properties")
def supported_properties(
    platform: str = typer.Argument(..., help=_PLATFORM_HELP),
    usage: str = typer.Option("managedDevice", help=_USAGE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The device properties rules for a platform can read, with their operators and values."""
    path = f"{FILTERS}/getPlatformSupportedProperties(platform='{quote(platform, safe='')}')"
    rows = call("GET", path, params={"usage": usage}).json()["value"]
    if not as_json:
        for row in rows:
            row["supportedOperators"] = ",".join(row["supportedOperators"])
            row["supportedValues"] = ",".join(row["supportedValues"])
    show(rows, as_json, ["name", "dataType", "supportedOperators", "supportedValues"])


@filters.command("evaluate")
def evaluate_filter(
    filter_id: str,
    prop: list[str] = typer.Option(..., "--property", "-p", help="A device property, e.g. osVersion=17.1."),
) -> None:
    """Preview: whether a device with these properties is in the filter."""
    device = pairs(prop, "--property")
    matches = call("POST", f"{FILTERS}/{filter_id}/evaluate", json={"device": device}).json()["matches"]
    typer.echo("matches" if matches else "does not match")
