"""`muster ade`: enrollment program tokens (Apple Business Manager / School Manager) and their profiles."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from muster.cli.api import DM, call, collection, show

ade = typer.Typer(help="Automated Device Enrollment: ABM/ASM tokens, sync, profiles.", no_args_is_help=True)
TOKENS = f"{DM}/depOnboardingSettings"


@ade.command("tokens")
def list_tokens(as_json: bool = typer.Option(False, "--json")) -> None:
    """Enrollment program tokens, their expiry and last sync."""
    show(
        collection(TOKENS),
        as_json,
        [
            "id",
            "tokenName",
            "tokenType",
            "serverName",
            "tokenExpirationDateTime",
            "syncedDeviceCount",
            "lastSuccessfulSyncDateTime",
            "syncState",
            "expiryWarning",
        ],
    )


@ade.command("create")
def create_token(
    name: str = typer.Option("Apple Business Manager", "--name"),
    public_key: Path = typer.Option(Path("muster-dep.pem"), "--public-key", "-o", help="Where to write the key."),
    agree: bool = typer.Option(False, "--agree", help="Consent to sharing user and device information with Apple."),
) -> None:
    """Create a token and write the public key to upload to your MDM server in Apple Business Manager."""
    consent = call("GET", f"{DM}/dataSharingConsents/appleEnrollmentProgram").json()
    if not consent["granted"]:
        if not agree:
            typer.secho(f"{consent['consentText']}\nRe-run with --agree to consent.", err=True, fg="yellow")
            raise typer.Exit(1)
        call("POST", f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
    token = call("POST", TOKENS, json={"tokenName": name}).json()
    public_key.write_text(call("GET", f"{TOKENS}/{token['id']}/generateEncryptionPublicKey").json()["value"])
    typer.echo(
        f"token {token['id']}: upload {public_key} to your MDM server in Apple Business Manager, download "
        f"its server token, then run `muster ade upload {token['id']} <token.p7m> --apple-id ...`"
    )


@ade.command("upload")
def upload_token(token_id: str, server_token: Path, apple_id: str = typer.Option(..., "--apple-id")) -> None:
    """Upload (or renew) the server token downloaded from Apple Business Manager; a sync starts at once."""
    body = {"appleId": apple_id, "depToken": server_token.read_text()}
    show(call("POST", f"{TOKENS}/{token_id}/uploadDepToken", json=body).json(), True)


@ade.command("sync")
def sync(token_id: str) -> None:
    """Sync now (at most once every 15 minutes)."""
    call("POST", f"{TOKENS}/{token_id}/syncWithAppleDeviceEnrollmentProgram")
    typer.echo("sync started")


@ade.command("devices")
def devices(
    token_id: str,
    filter: str = typer.Option(None, "--filter"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The token's devices with their profile assignment (failures show their reason)."""
    params = {"$filter": filter} if filter else {}
    rows = call("GET", f"{TOKENS}/{token_id}/importedAppleDeviceIdentities", params=params).json()["value"]
    show(
        rows,
        as_json,
        [
            "serialNumber",
            "deviceFamily",
            "abmStatus",
            "requestedEnrollmentProfileName",
            "profileAssignmentStatus",
            "profileAssignmentError",
            "enrollmentState",
        ],
    )


@ade.command("profile-create")
def create_profile(
    token_id: str,
    settings: Path = typer.Argument(
        ..., help="JSON file: a Graph depIOSEnrollmentProfile or depMacOSEnrollmentProfile."
    ),
) -> None:
    """Create an ADE enrollment profile (defined in Apple Business Manager as well)."""
    show(call("POST", f"{TOKENS}/{token_id}/enrollmentProfiles", json=json.loads(settings.read_text())).json(), True)


@ade.command("profile-assign")
def assign_profile(token_id: str, profile_id: str, serials: list[str] = typer.Argument(...)) -> None:
    """Assign a profile to devices by serial number; per-device failures are listed and retried."""
    result = call(
        "POST",
        f"{TOKENS}/{token_id}/enrollmentProfiles/{profile_id}/updateDeviceProfileAssignment",
        json={"deviceIds": serials},
    ).json()
    typer.echo(f"assigned {len(result['succeeded'])} device(s)")
    for failure in result["failed"]:
        typer.secho(f"  {failure['serialNumber']}: {failure['status']} (retried automatically)", fg="yellow")


@ade.command("profile-default")
def default_profile(token_id: str, profile_id: str) -> None:
    """Make the profile the token's default for new devices of its platform."""
    call("POST", f"{TOKENS}/{token_id}/enrollmentProfiles/{profile_id}/setDefaultProfile")
    typer.echo("default profile set")
