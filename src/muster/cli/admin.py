"""Admin commands over the HTTP API (the CLI is just another API client; see `muster.cli.api`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from muster.cli.ade import ade
from muster.cli.api import DM, call, collection, show

devices = typer.Typer(help="Managed devices.", no_args_is_help=True)
push = typer.Typer(help="The Apple MDM push certificate.", no_args_is_help=True)
profiles = typer.Typer(help="Apple enrollment profiles.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ade, name="ade")
    app.add_typer(devices, name="devices")
    app.add_typer(push, name="push-certificate")
    app.add_typer(profiles, name="profiles")


@devices.command("list")
def list_devices(
    filter: str = typer.Option(None, "--filter", help="OData $filter, e.g. \"operatingSystem eq 'iOS'\""),
    top: int = typer.Option(100, help="Page size."),
    all_pages: bool = typer.Option(False, "--all", help="Follow @odata.nextLink to the end."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List managed devices."""
    params: dict[str, Any] = {"$top": top}
    if filter:
        params["$filter"] = filter
    path = f"{DM}/managedDevices"
    rows = collection(path, params) if all_pages else call("GET", path, params=params).json()["value"]
    show(
        rows,
        as_json,
        [
            "id",
            "deviceName",
            "operatingSystem",
            "osVersion",
            "serialNumber",
            "managementState",
            "userPrincipalName",
            "lastSyncDateTime",
        ],
    )


@devices.command("show")
def show_device(device_id: str, as_json: bool = typer.Option(True, "--json/--no-json")) -> None:
    """Show one device with its hardware information."""
    show(call("GET", f"{DM}/managedDevices/{device_id}").json(), as_json)


@devices.command("commands")
def device_commands(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The commands sent to a device and their results."""
    rows = collection(f"{DM}/managedDevices/{device_id}/commands")
    show(
        rows,
        as_json,
        ["commandUuid", "requestType", "action", "status", "createdDateTime", "completedDateTime"],
    )


@devices.command("action")
def device_action(
    action: str = typer.Argument(
        ...,
        help="retire, wipe, remoteLock, rebootNow, shutDown, syncDevice, "
        "setDeviceName, resetPasscode, enableLostMode, disableLostMode",
    ),
    device_ids: list[str] = typer.Argument(..., help="One or more device ids."),
    parameter: list[str] = typer.Option([], "--param", "-p", help="key=value, e.g. -p deviceName=Kiosk-1"),
) -> None:
    """Run a device action on one or many devices."""
    parameters = dict(p.split("=", 1) for p in parameter)
    body = {"actionName": action, "deviceIds": device_ids, **parameters}
    result = call("POST", f"{DM}/managedDevices/executeAction", json=body).json()
    typer.echo(f"queued for {len(result['successfulDeviceIds'])} device(s)")
    for failure in result["failures"]:
        typer.secho(f"  {failure['deviceId']}: {failure['reason']}", fg="yellow")


@push.command("show")
def push_show() -> None:
    """The active push certificate, its topic and expiry."""
    show(call("GET", f"{DM}/applePushNotificationCertificate").json(), True)


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
    csr = call(
        "GET", f"{DM}/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest"
    ).json()
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
    show(call("PATCH", f"{DM}/applePushNotificationCertificate", json=body).json(), True)


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
