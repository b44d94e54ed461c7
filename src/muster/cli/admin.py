"""`muster push-certificate`, `muster consents` and `muster profiles`: what Apple enrollment needs first."""

from __future__ import annotations

from pathlib import Path

import typer

from muster.cli.api import DM, call, show_one

push = typer.Typer(help="The Apple MDM push certificate.", no_args_is_help=True)
consents = typer.Typer(
    help="Consents to share data with Apple (needed before the push certificate or ADE).", no_args_is_help=True
)
profiles = typer.Typer(help="Apple enrollment profiles.", no_args_is_help=True)
PUSH_CERTIFICATE = f"{DM}/applePushNotificationCertificate"
CONSENT_IDS = "appleMDMPushCertificate or appleEnrollmentProgram"


def register(app: typer.Typer) -> None:
    app.add_typer(push, name="push-certificate")
    app.add_typer(consents, name="consents")
    app.add_typer(profiles, name="profiles")


@consents.command("show")
def show_consent(
    consent_id: str = typer.Argument(..., help=CONSENT_IDS), as_json: bool = typer.Option(False, "--json")
) -> None:
    """A consent: its terms, and whether and by whom it was granted."""
    show_one(call("GET", f"{DM}/dataSharingConsents/{consent_id}").json(), as_json)


@consents.command("grant")
def grant_consent(consent_id: str = typer.Argument(..., help=CONSENT_IDS)) -> None:
    """Consent to sharing user and device information with Apple (read the terms with `show` first)."""
    granted = call("POST", f"{DM}/dataSharingConsents/{consent_id}/consentToDataSharing").json()
    typer.echo(f"{granted['serviceDisplayName']}: consent granted by {granted['grantedByUpn']}")


@push.command("show")
def push_show(as_json: bool = typer.Option(False, "--json")) -> None:
    """The push certificate: topic, Apple Account, expiry (or that none is uploaded yet)."""
    show_one(call("GET", PUSH_CERTIFICATE).json(), as_json)


@push.command("csr")
def push_csr(
    output: Path = typer.Option(Path("muster-push.csr"), "--output", "-o"),
    agree: bool = typer.Option(False, "--agree", help="Consent to sharing user and device information with Apple."),
) -> None:
    """Write a certificate signing request to take to Apple's Push Certificates Portal."""
    consent = call("GET", f"{DM}/dataSharingConsents/appleMDMPushCertificate").json()
    if not consent["granted"]:
        if not agree:
            typer.secho(f"{consent['consentText']}\nRe-run with --agree to consent.", err=True, fg="yellow")
            raise typer.Exit(1)
        call("POST", f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing")
    csr = call("GET", f"{PUSH_CERTIFICATE}/downloadApplePushNotificationCertificateSigningRequest").json()
    output.write_text(csr["value"])
    typer.echo(
        f"wrote {output}: have it signed, upload it at https://identity.apple.com/pushcert, then run "
        "`muster push-certificate upload`"
    )


@push.command("upload")
def push_upload(
    certificate: Path,
    apple_id: str = typer.Option(..., help="The Apple Account used in the portal (renewals need it)."),
) -> None:
    """Upload the certificate Apple issued."""
    body = {"certificate": certificate.read_text(), "appleIdentifier": apple_id}
    show_one(call("PATCH", PUSH_CERTIFICATE, json=body).json(), as_json=True)


@push.command("delete")
def push_delete(
    yes: bool = typer.Option(False, "--yes", help="Confirm: enrolled devices can no longer be reached."),
) -> None:
    """Delete the push certificate: no device can be reached until a new one is uploaded."""
    if not yes:
        typer.secho(
            "Without a push certificate no enrolled device can be reached: re-run with --yes.", err=True, fg="red"
        )
        raise typer.Exit(1)
    call("DELETE", PUSH_CERTIFICATE)
    typer.echo("push certificate deleted")


@profiles.command("export")
def profile_export(
    output: Path = typer.Option(Path("enroll.mobileconfig"), "--output", "-o"),
    user: str = typer.Option(None, "--user", help="User principal name; omit for a userless profile."),
) -> None:
    """Export a signed enrollment profile (valid for one enrollment within 15 minutes)."""
    response = call("POST", f"{DM}/exportAppleEnrollmentProfile", json={"userPrincipalName": user})
    output.write_bytes(response.content)
    typer.echo(f"wrote {output} ({len(response.content)} bytes)")


@push.command("vendor-sign")
def push_vendor_sign(
    csr: Path = typer.Argument(..., help="The CSR from `muster push-certificate csr`."),
    vendor_certificate: Path = typer.Option(..., help="Your MDM vendor certificate (PEM) from Apple Developer."),
    vendor_key: Path = typer.Option(..., help="Its private key (PEM). Used here, on this machine only."),
    chain: list[Path] = typer.Option(..., help="Apple's WWDR intermediate, then Apple's root (PEM), in that order."),
    output: Path = typer.Option(Path("push-request.b64"), "--output", "-o"),
) -> None:
    """Sign the CSR as an MDM vendor, offline: the file Apple's Push Certificates Portal accepts."""
    from muster.pki.push_certificate import PushCertificateError, build_vendor_signed_request

    try:
        request = build_vendor_signed_request(
            csr.read_bytes(),
            vendor_certificate_pem=vendor_certificate.read_bytes(),
            vendor_key_pem=vendor_key.read_bytes(),
            chain_pems=[c.read_bytes() for c in chain],
        )
    except PushCertificateError as error:
        typer.secho(str(error), err=True, fg="red")
        raise typer.Exit(1) from None
    output.write_bytes(request)
    typer.echo(f"wrote {output}: upload it at https://identity.apple.com/pushcert")
