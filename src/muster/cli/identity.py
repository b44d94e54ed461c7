"""`muster identity-provider` and `muster provisioning-tokens`: how users sign in to enroll, and the SCIM
secrets an identity provider provisions users with."""

from __future__ import annotations

from pathlib import Path

import typer

from muster.cli.api import DM, call, collection, patch, present, read_source, reveal_secret, show, show_one

GRAPH = "/graph/beta"
IDENTITY_PROVIDER = f"{DM}/identityProviderSettings"
PROVISIONING_TOKENS = f"{GRAPH}/directory/provisioningTokens"

identity_provider = typer.Typer(
    help="The OpenID Connect provider users sign in with to enroll, and MFA for enrollment.", no_args_is_help=True
)
provisioning_tokens = typer.Typer(
    help="SCIM bearer secrets for identity providers (Entra ID, Okta) that provision users.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_provider, name="identity-provider")
    app.add_typer(provisioning_tokens, name="provisioning-tokens")


@identity_provider.command("show")
def show_settings(as_json: bool = typer.Option(False, "--json")) -> None:
    """The provider's settings and the redirect URI to register with it (the client secret is never shown)."""
    show_one(call("GET", IDENTITY_PROVIDER).json(), as_json)


@identity_provider.command("set")
def set_settings(
    issuer: str = typer.Option(None, help="The provider's issuer URL."),
    client_id: str = typer.Option(None, "--client-id"),
    client_secret_file: Path = typer.Option(
        None, "--client-secret-file", help="File holding the client secret (- reads standard input)."
    ),
    scope: list[str] = typer.Option([], "--scope", help="Replaces the scopes asked for; repeat for several."),
    upn_claim: str = typer.Option(None, "--upn-claim", help="The claim holding the userPrincipalName."),
    require_mfa: bool = typer.Option(
        None, "--require-mfa/--no-require-mfa", help="Require multifactor authentication for enrollment."
    ),
    acr: list[str] = typer.Option([], "--acr", help="Replaces the `acr` values that prove MFA; repeat for several."),
    remove: bool = typer.Option(False, "--remove", help="Remove the provider: users sign in with local accounts."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change some settings (the others stay as they are)."""
    secret = read_source(client_secret_file).strip() if client_secret_file else None
    body = present(
        issuer="" if remove else issuer,  # empty removes
        clientId="" if remove else client_id,
        clientSecret="" if remove else secret,
        scopes=scope or None,
        userPrincipalNameClaim=upn_claim,
        requireMultiFactorAuthenticationForEnrollment=require_mfa,
        multiFactorAuthenticationAcrValues=acr or None,
    )
    show_one(patch(IDENTITY_PROVIDER, body).json(), as_json)


@provisioning_tokens.command("create")
def create_token(
    display_name: str = typer.Argument(..., help="Which identity provider uses it."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the secret to this file (mode 0600)."),
) -> None:
    """Create a SCIM secret; it is shown once (or written to --output) and cannot be read back."""
    created = call("POST", PROVISIONING_TOKENS, json={"displayName": display_name}).json()
    typer.echo(f"id:            {created['id']}")
    typer.echo(f"SCIM endpoint: {created['scimEndpoint']}")
    reveal_secret("SCIM secret", created["secretText"], output)


@provisioning_tokens.command("list")
def list_tokens(as_json: bool = typer.Option(False, "--json")) -> None:
    """SCIM secrets (never the secrets themselves) and when each was last used."""
    show(
        collection(PROVISIONING_TOKENS),
        as_json,
        ["id", "displayName", "createdBy", "createdDateTime", "lastUsedDateTime"],
    )


@provisioning_tokens.command("revoke")
def revoke_token(token_id: str) -> None:
    """Revoke a SCIM secret: the provider's next request with it is refused."""
    call("DELETE", f"{PROVISIONING_TOKENS}/{token_id}")
    typer.echo(f"revoked {token_id}")
