"""`muster devices`: managed devices, their scope tags, actions (on many devices, in batches), commands and apps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from muster.cli.api import DM, call, collection, console, pairs, read_source, show, show_one
from muster.domain.devices import DeviceAction

devices = typer.Typer(help="Managed devices: list, show, scope tags, actions, commands, apps.", no_args_is_help=True)
MANAGED_DEVICES = f"{DM}/managedDevices"


def register(app: typer.Typer) -> None:
    app.add_typer(devices, name="devices")


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
    rows = (
        collection(MANAGED_DEVICES, params)
        if all_pages
        else call("GET", MANAGED_DEVICES, params=params).json()["value"]
    )
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
def show_device(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One device with its hardware information and scope tags."""
    show_one(call("GET", f"{MANAGED_DEVICES}/{device_id}").json(), as_json)


@devices.command("update")
def update_device(
    device_id: str,
    scope_tag: list[str] = typer.Option(..., "--scope-tag", "-t", help="A scope tag id; repeat for several."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Set the device's scope tags (within your own scope)."""
    body = {"roleScopeTagIds": scope_tag}
    show_one(call("PATCH", f"{MANAGED_DEVICES}/{device_id}", json=body).json(), as_json)


@devices.command("commands")
def device_commands(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The commands sent to a device and their results."""
    rows = collection(f"{MANAGED_DEVICES}/{device_id}/commands")
    show(
        rows,
        as_json,
        ["commandUuid", "requestType", "action", "status", "createdDateTime", "completedDateTime"],
    )


@devices.command("apps")
def detected_apps(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The apps the device reported as installed."""
    rows = collection(f"{MANAGED_DEVICES}/{device_id}/detectedApps")
    show(rows, as_json, ["displayName", "id", "version", "sizeInByte"])


@devices.command("inventory")
def inventory(device_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Everything the device reported: information, security, apps, profiles, certificates."""
    show_one(call("GET", f"{MANAGED_DEVICES}/{device_id}/inventory").json(), as_json)


def _parameter(text: str) -> str | bool:
    return {"true": True, "false": False}.get(text, text)


def _ids_from(source: Path) -> list[str]:
    return [line.strip() for line in read_source(source).splitlines() if line.strip()]


@devices.command("action")
def device_action(
    action: str = typer.Argument(..., help=", ".join(a.value for a in DeviceAction)),
    device_ids: list[str] = typer.Argument(None, help="One or more device ids."),
    ids_file: Path = typer.Option(None, "--ids-file", help="Device ids, one a line (- reads standard input)."),
    parameter: list[str] = typer.Option(
        [], "--param", "-p", help="key=value, e.g. -p deviceName=Kiosk-1 (true and false are booleans)."
    ),
    batch_size: int = typer.Option(1000, min=1, max=100_000, help="Devices per request (Graph executeAction)."),
) -> None:
    """Run a device action on one or many devices; many devices go in batches, with a progress bar."""
    wanted = list(dict.fromkeys([*(device_ids or []), *(_ids_from(ids_file) if ids_file else [])]))
    if not wanted:
        typer.secho("Give device ids as arguments or with --ids-file.", err=True, fg="red")
        raise typer.Exit(2)
    parameters = {key: _parameter(value) for key, value in pairs(parameter, "--param").items()}
    batches = [wanted[start : start + batch_size] for start in range(0, len(wanted), batch_size)]
    queued: list[str] = []
    failures: list[dict[str, str]] = []
    columns = (TextColumn(action), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, disable=len(batches) == 1) as bar:
        task = bar.add_task(action, total=len(wanted))
        for batch in batches:
            body = {**parameters, "actionName": action, "deviceIds": batch}
            try:
                result = call("POST", f"{MANAGED_DEVICES}/executeAction", json=body).json()
            except typer.Exit:
                typer.secho(f"stopped: queued for {len(queued)} device(s) before this error", err=True, fg="red")
                raise
            queued += result["successfulDeviceIds"]
            failures += result["failures"]
            bar.advance(task, len(batch))
    typer.echo(f"queued for {len(queued)} device(s)")
    for failure in failures:
        typer.secho(f"  {failure['deviceId']}: {failure['reason']}", fg="yellow")
