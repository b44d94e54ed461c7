"""`muster ade profiles`: a token's ADE enrollment profiles (Graph `enrollmentProfiles`), assignment and default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from muster.cli.api import DM, call, collection, json_or_text, pairs, patch, read_json, show, show_one

TOKENS = f"{DM}/depOnboardingSettings"
PLATFORMS = {
    "ios": "#microsoft.graph.depIOSEnrollmentProfile",
    "macos": "#microsoft.graph.depMacOSEnrollmentProfile",
}
profiles = typer.Typer(help="A token's ADE enrollment profiles.", no_args_is_help=True)

_SETTINGS_HELP = "JSON file: a Graph depIOSEnrollmentProfile or depMacOSEnrollmentProfile."
_SET_HELP = 'A setting, key=value; the value is JSON when it parses (true, 3, ["a"]), text otherwise.'


def _profiles(token_id: str) -> str:
    return f"{TOKENS}/{token_id}/enrollmentProfiles"


def _body(settings: Path | None, values: list[str], scope_tags: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = read_json(f"@{settings}") if settings else {}
    if not isinstance(body, dict):
        typer.secho(f"{settings}: expected a JSON object", err=True, fg="red")
        raise typer.Exit(2)
    body |= {key: json_or_text(value) for key, value in pairs(values, "--set").items()}
    if scope_tags:
        body["roleScopeTagIds"] = scope_tags
    return body


def _print_profile(profile: dict[str, Any], as_json: bool) -> None:
    """The profile as saved; the table is followed by the server's warnings (the JSON holds them)."""
    show_one(profile, as_json)
    for warning in [] if as_json else profile.get("warnings") or []:
        typer.secho(f"warning: {warning}", err=True, fg="yellow")


@profiles.command("list")
def list_profiles(token_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The token's enrollment profiles."""
    rows = collection(_profiles(token_id))
    for row in rows:
        row["platform"] = next((name for name, odata in PLATFORMS.items() if odata == row["@odata.type"]), "")
    show(rows, as_json, ["id", "displayName", "platform", "description", "lastModifiedDateTime"])


@profiles.command("show")
def show_profile(token_id: str, profile_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One enrollment profile with all its settings."""
    show_one(call("GET", f"{_profiles(token_id)}/{profile_id}").json(), as_json)


@profiles.command("create")
def create_profile(
    token_id: str,
    settings: Path = typer.Argument(None, help=_SETTINGS_HELP),
    name: str = typer.Option(None, "--name", help="displayName (instead of, or over, the file's)."),
    platform: str = typer.Option(None, "--platform", help="ios or macos (instead of the file's @odata.type)."),
    values: list[str] = typer.Option([], "--set", help=_SET_HELP),
    scope_tag: list[str] = typer.Option([], "--scope-tag", "-t", help="A scope tag id; repeat for several."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an ADE enrollment profile (define it in Apple Business Manager as well)."""
    body = _body(settings, values, scope_tag)
    if platform is not None:
        if platform.lower() not in PLATFORMS:
            typer.secho("--platform must be ios or macos", err=True, fg="red")
            raise typer.Exit(2)
        body["@odata.type"] = PLATFORMS[platform.lower()]
    body.setdefault("@odata.type", PLATFORMS["ios"])
    if name is not None:
        body["displayName"] = name
    _print_profile(call("POST", _profiles(token_id), json=body).json(), as_json)


@profiles.command("update")
def update_profile(
    token_id: str,
    profile_id: str,
    settings: Path = typer.Argument(None, help="JSON file with the settings to change."),
    values: list[str] = typer.Option([], "--set", help=_SET_HELP),
    scope_tag: list[str] = typer.Option([], "--scope-tag", "-t", help="Replace the scope tags with these."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change some settings of a profile (the others stay as they are)."""
    body = _body(settings, values, scope_tag)
    _print_profile(patch(f"{_profiles(token_id)}/{profile_id}", body).json(), as_json)


@profiles.command("delete")
def delete_profile(token_id: str, profile_id: str) -> None:
    """Delete a profile that no device is assigned to."""
    call("DELETE", f"{_profiles(token_id)}/{profile_id}")
    typer.echo(f"deleted profile {profile_id}")


@profiles.command("assign")
def assign_profile(token_id: str, profile_id: str, serials: list[str] = typer.Argument(...)) -> None:
    """Assign a profile to devices by serial number; per-device failures are listed and retried."""
    result = call(
        "POST", f"{_profiles(token_id)}/{profile_id}/updateDeviceProfileAssignment", json={"deviceIds": serials}
    ).json()
    typer.echo(f"assigned {len(result['succeeded'])} device(s)")
    for failure in result["failed"]:
        typer.secho(f"  {failure['serialNumber']}: {failure['status']} (retried automatically)", fg="yellow")


@profiles.command("default")
def default_profile(token_id: str, profile_id: str) -> None:
    """Make the profile the token's default for new devices of its platform."""
    call("POST", f"{_profiles(token_id)}/{profile_id}/setDefaultProfile")
    typer.echo("default profile set")
