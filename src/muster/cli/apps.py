"""`muster apps`: API clients (Graph `applications`) and their credentials."""

from __future__ import annotations

from pathlib import Path

import typer

from muster.cli.api import call, collection, reveal_secret, show, show_one

apps = typer.Typer(help="API clients that sign in with client credentials.", no_args_is_help=True)
APPLICATIONS = "/graph/beta/applications"


def register(app: typer.Typer) -> None:
    app.add_typer(apps, name="apps")


@apps.command("list")
def list_apps(as_json: bool = typer.Option(False, "--json")) -> None:
    """List API clients."""
    value = collection(APPLICATIONS)
    rows = [{**a, "secrets": len(a["passwordCredentials"]), "certificates": len(a["keyCredentials"])} for a in value]
    show(rows, as_json, ["id", "appId", "displayName", "secrets", "certificates"])


@apps.command("show")
def show_app(application_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One API client and its credentials (secrets themselves are never shown again)."""
    application = call("GET", f"{APPLICATIONS}/{application_id}").json()
    if as_json:
        show_one(application, True)
        return
    typer.echo(f"{application['displayName']}  id {application['id']}  appId (client_id) {application['appId']}")
    rows = [
        {**c, "kind": "secret", "name": c["displayName"] or c["hint"]} for c in application["passwordCredentials"]
    ] + [{**c, "kind": "certificate", "name": c["customKeyIdentifier"]} for c in application["keyCredentials"]]
    show(rows, False, ["keyId", "kind", "name", "startDateTime", "endDateTime"])


@apps.command("create")
def create_app(display_name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Register an API client; give it a role with a role assignment, and a credential with add-password/add-key."""
    created = call("POST", APPLICATIONS, json={"displayName": display_name}).json()
    show(created if as_json else [created], as_json, ["id", "appId", "displayName"])


@apps.command("add-password")
def add_password(
    application_id: str,
    display_name: str = typer.Option(None, "--display-name"),
    end: str = typer.Option(None, "--end", help="Expiry, ISO 8601 with a time zone (default: in one year)."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the secret to this file (mode 0600)."),
) -> None:
    """Add a client secret; it is shown once (or written to --output) and cannot be read back."""
    credential = {"displayName": display_name, "endDateTime": end}
    added = call("POST", f"{APPLICATIONS}/{application_id}/addPassword", json={"passwordCredential": credential}).json()
    typer.echo(f"Secret {added['keyId']} added (expires {added['endDateTime']}).")
    reveal_secret("client secret", added["secretText"], output)


@apps.command("remove-password")
def remove_password(application_id: str, key_id: str) -> None:
    """Remove a client secret: tokens can no longer be obtained with it."""
    call("POST", f"{APPLICATIONS}/{application_id}/removePassword", json={"keyId": key_id})
    typer.echo(f"Removed secret {key_id}.")


@apps.command("add-key")
def add_key(application_id: str, certificate: Path, display_name: str = typer.Option(None, "--display-name")) -> None:
    """Register a PEM certificate whose private key signs the client's assertions."""
    body = {
        "keyCredential": {
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": certificate.read_text(),
            "displayName": display_name,
        }
    }
    added = call("POST", f"{APPLICATIONS}/{application_id}/addKey", json=body).json()
    typer.echo(f"Certificate {added['customKeyIdentifier']} registered as key {added['keyId']}.")


@apps.command("remove-key")
def remove_key(application_id: str, key_id: str) -> None:
    """Remove a certificate credential: assertions it signs are refused from now on."""
    call("POST", f"{APPLICATIONS}/{application_id}/removeKey", json={"keyId": key_id})
    typer.echo(f"Removed certificate {key_id}.")


@apps.command("delete")
def delete_app(application_id: str) -> None:
    """Delete an API client: its tokens stop working at once."""
    call("DELETE", f"{APPLICATIONS}/{application_id}")
    typer.echo(f"Deleted {application_id}.")
