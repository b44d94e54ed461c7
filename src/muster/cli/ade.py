"""`muster ade`: enrollment program tokens (Apple Business Manager / School Manager), their sync, devices, profiles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from muster.cli.ade_profiles import TOKENS, profiles
from muster.cli.api import DM, call, collection, console, show, show_one

ade = typer.Typer(help="Automated Device Enrollment: ABM/ASM tokens, sync, devices, profiles.", no_args_is_help=True)
imported = typer.Typer(help="The devices Apple Business Manager assigned to a token.", no_args_is_help=True)
ade.add_typer(profiles, name="profiles")
ade.add_typer(imported, name="imported-devices")

TOKEN_COLUMNS = [
    "id",
    "tokenName",
    "tokenType",
    "serverName",
    "tokenExpirationDateTime",
    "syncedDeviceCount",
    "lastSuccessfulSyncDateTime",
    "syncState",
    "expiryWarning",
]


def register(app: typer.Typer) -> None:
    app.add_typer(ade, name="ade")


@ade.command("list")
def list_tokens(as_json: bool = typer.Option(False, "--json")) -> None:
    """Enrollment program tokens, their expiry and last sync."""
    show(collection(TOKENS), as_json, TOKEN_COLUMNS)


@ade.command("show")
def show_token(token_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One token: Apple Account, expiry, sync state and outcome, default profiles, scope tags."""
    show_one(call("GET", f"{TOKENS}/{token_id}").json(), as_json)


@ade.command("create")
def create_token(
    name: str = typer.Option("Apple Business Manager", "--name"),
    public_key: Path = typer.Option(Path("muster-dep.pem"), "--public-key", "-o", help="Where to write the key."),
    agree: bool = typer.Option(False, "--agree", help="Consent to sharing user and device information with Apple."),
    scope_tag: list[str] = typer.Option([], "--scope-tag", "-t", help="A scope tag id; repeat for several."),
) -> None:
    """Create a token and write the public key to upload to your MDM server in Apple Business Manager."""
    consent = call("GET", f"{DM}/dataSharingConsents/appleEnrollmentProgram").json()
    if not consent["granted"]:
        if not agree:
            typer.secho(f"{consent['consentText']}\nRe-run with --agree to consent.", err=True, fg="yellow")
            raise typer.Exit(1)
        call("POST", f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
    token = call("POST", TOKENS, json={"tokenName": name, "roleScopeTagIds": scope_tag}).json()
    public_key.write_text(call("GET", f"{TOKENS}/{token['id']}/generateEncryptionPublicKey").json()["value"])
    typer.echo(
        f"token {token['id']}: upload {public_key} to your MDM server in Apple Business Manager, download "
        f"its server token, then run `muster ade upload {token['id']} <token.p7m> --apple-id ...`"
    )


@ade.command("update")
def update_token(
    token_id: str,
    scope_tag: list[str] = typer.Option(..., "--scope-tag", "-t", help="A scope tag id; repeat for several."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Set the token's scope tags (within your own scope)."""
    show_one(call("PATCH", f"{TOKENS}/{token_id}", json={"roleScopeTagIds": scope_tag}).json(), as_json)


@ade.command("delete")
def delete_token(token_id: str) -> None:
    """Delete a token that has no devices assigned and no profiles left."""
    call("DELETE", f"{TOKENS}/{token_id}")
    typer.echo(f"deleted token {token_id}")


@ade.command("upload")
def upload_token(token_id: str, server_token: Path, apple_id: str = typer.Option(..., "--apple-id")) -> None:
    """Upload, or renew, the server token downloaded from Apple Business Manager; a sync starts at once."""
    body = {"appleId": apple_id, "depToken": server_token.read_text()}
    show(call("POST", f"{TOKENS}/{token_id}/uploadDepToken", json=body).json(), True)


@ade.command("sync")
def sync(
    token_id: str,
    wait: bool = typer.Option(False, "--wait", help="Show the sync's progress until it finishes."),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between two looks at the sync with --wait."),
) -> None:
    """Sync now (at most once every 15 minutes)."""
    call("POST", f"{TOKENS}/{token_id}/syncWithAppleDeviceEnrollmentProgram")
    if not wait:
        typer.echo("sync started")
        return
    token = _wait_for_sync(token_id, interval)
    if token["lastSyncErrorCode"]:
        typer.secho(f"sync failed: {token['lastSyncError']}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"sync finished at {token['lastSuccessfulSyncDateTime']}: {token['syncedDeviceCount']} device(s)")


def _wait_for_sync(token_id: str, interval: float) -> dict[str, Any]:
    """The token once its sync is no longer running (the server ends a sync that overruns its time limit)."""
    with console.status("syncing with Apple") as status:
        while True:
            token: dict[str, Any] = call("GET", f"{TOKENS}/{token_id}").json()
            if token["syncState"] != "running":
                return token
            status.update(
                f"syncing with Apple since {token['lastSyncTriggeredDateTime']}: "
                f"{token['syncedDeviceCount']} device(s) so far"
            )
            time.sleep(interval)


@imported.command("list")
def list_imported(
    token_id: str,
    filter: str = typer.Option(None, "--filter", help="OData, e.g. \"profileAssignmentStatus eq 'failed'\""),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The token's devices with their profile assignment (failures show their reason)."""
    rows = collection(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities", {"$filter": filter} if filter else None)
    show(
        rows,
        as_json,
        [
            "id",
            "serialNumber",
            "deviceFamily",
            "abmStatus",
            "requestedEnrollmentProfileName",
            "profileAssignmentStatus",
            "profileAssignmentError",
            "enrollmentState",
        ],
    )


@imported.command("delete")
def delete_imported(token_id: str, device_id: str) -> None:
    """Remove a device here; unassign it in Apple Business Manager too, or the next full sync brings it back."""
    call("DELETE", f"{TOKENS}/{token_id}/importedAppleDeviceIdentities/{device_id}")
    typer.echo(f"deleted imported device {device_id}")
