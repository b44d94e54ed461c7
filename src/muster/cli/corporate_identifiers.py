"""`muster corporate-identifiers`: corporate device identifiers (IMEI, serial, manufacturer+model+serial).

`import` reads a file of any size (the seeds' CSV format: no header, `identifier,details`; for
manufacturerModelSerial `manufacturer,model,serial[,details]`) and sends it through the bulk API in batches, with a
progress bar. An identifier repeated in the file is sent once, from its first line (CID-08).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from muster.cli.api import DM, call, collection, console, show
from muster.domain.corporate_identifiers import CsvRejected, IdentifierError, IdentityType, csv_rows, normalise

identifiers = typer.Typer(help="Corporate device identifiers (importedDeviceIdentities).", no_args_is_help=True)
IDS = f"{DM}/importedDeviceIdentities"
COLUMNS = ["id", "importedDeviceIdentityType", "importedDeviceIdentifier", "description", "enrollmentState"]
_TYPE_HELP = "imei, serialNumber or manufacturerModelSerial ('manufacturer,model,serial')"
MAX_ERRORS_SHOWN = 20


def register(app: typer.Typer) -> None:
    app.add_typer(identifiers, name="corporate-identifiers")


def _item(identifier: str, kind: str, details: str | None = None) -> dict[str, Any]:
    return {"importedDeviceIdentifier": identifier, "importedDeviceIdentityType": kind, "description": details}


@identifiers.command("list")
def list_identifiers(
    filter: str = typer.Option(None, "--filter", help="OData $filter, e.g. \"enrollmentState eq 'enrolled'\""),
    top: int = typer.Option(100, help="Page size."),
    all_pages: bool = typer.Option(False, "--all", help="Follow @odata.nextLink to the end."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List imported identifiers."""
    params: dict[str, Any] = {"$top": top} | ({"$filter": filter} if filter else {})
    rows = collection(IDS, params) if all_pages else call("GET", IDS, params=params).json()["value"]
    show(rows, as_json, COLUMNS)


@identifiers.command("add")
def add_identifier(
    identifier: str,
    kind: IdentityType = typer.Option(IdentityType.SERIAL_NUMBER, "--type", help=_TYPE_HELP),
    details: str = typer.Option(None, help="Up to 128 characters, seen by admins only."),
) -> None:
    """Add one identifier."""
    typer.echo(call("POST", IDS, json=_item(identifier, kind.value, details)).json()["id"])


@identifiers.command("import")
def import_identifiers(
    file: Path = typer.Argument(..., help="CSV file, no header; - reads standard input."),
    kind: IdentityType = typer.Option(..., "--type", help=_TYPE_HELP),
    overwrite: bool = typer.Option(False, help="Replace the details of identifiers already imported."),
    batch_size: int = typer.Option(50_000, min=1, max=50_000, help="Identifiers per request."),
) -> None:
    """Import a file of identifiers of one type; rows with errors are listed, the others are kept."""
    lines_and_items = list(_file_items(file, kind))
    accepted = 0
    errors: list[str] = []
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, disable=len(lines_and_items) <= batch_size) as bar:
        task = bar.add_task("import", total=len(lines_and_items))
        for start in range(0, len(lines_and_items), batch_size):
            batch = lines_and_items[start : start + batch_size]
            body = {
                "importedDeviceIdentities": [item for _, item in batch],
                "overwriteImportedDeviceIdentities": overwrite,
            }
            try:
                results = call("POST", f"{IDS}/importDeviceIdentityList", json=body).json()["value"]
            except typer.Exit:
                typer.secho(f"stopped: {accepted} identifier(s) imported before this error", err=True, fg="red")
                raise
            for (line, _), result in zip(batch, results, strict=True):
                if result["status"]:
                    accepted += 1
                else:
                    errors.append(f"line {line}: {result['error']}")
            bar.advance(task, len(batch))
    typer.echo(f"{accepted} identifier(s) imported or already there, {len(errors)} not imported")
    for error in errors[:MAX_ERRORS_SHOWN]:
        typer.secho(f"  {error}", fg="yellow")
    if len(errors) > MAX_ERRORS_SHOWN:
        typer.secho(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more", fg="yellow")


def _file_items(file: Path, kind: IdentityType) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, item) for each row, an identifier's first line only (CID-08)."""
    try:
        data = typer.get_binary_stream("stdin").read() if str(file) == "-" else file.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        typer.secho(f"Cannot read {file} as UTF-8 text: {error}", err=True, fg="red")
        raise typer.Exit(2) from None
    seen: set[str] = set()
    try:
        for row in csv_rows(text, kind, max_rows=None):
            try:
                key = normalise(kind, row.item.identifier)
            except IdentifierError:
                key = None  # sent as it is: the server says what is wrong with it
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            yield row.line, _item(row.item.identifier, kind.value, row.item.details)
    except CsvRejected as error:
        typer.secho(f"Cannot read {file}: {error}", err=True, fg="red")
        raise typer.Exit(2) from None


@identifiers.command("search")
def search_identifiers(
    identifier: list[str] = typer.Argument(..., help="One or more identifiers."),
    kind: IdentityType = typer.Option(IdentityType.SERIAL_NUMBER, "--type", help=_TYPE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Which of these identifiers are imported."""
    body = {"importedDeviceIdentities": [_item(value, kind.value) for value in identifier]}
    show(call("POST", f"{IDS}/searchExistingIdentities", json=body).json()["value"], as_json, COLUMNS)


@identifiers.command("delete")
def delete_identifiers(
    identifier: list[str] = typer.Argument(..., help="One or more identifiers."),
    kind: IdentityType = typer.Option(IdentityType.SERIAL_NUMBER, "--type", help=_TYPE_HELP),
) -> None:
    """Delete identifiers (devices already enrolled keep their ownership)."""
    body = {"importedDeviceIdentities": [_item(value, kind.value) for value in identifier]}
    results = call("POST", f"{IDS}/deleteDeviceIdentityList", json=body).json()["value"]
    deleted = [r["importedDeviceIdentifier"] for r in results if r["status"]]
    typer.echo(f"deleted {len(deleted)} identifier(s)")
    for result in results:
        if not result["status"]:
            typer.secho(f"  not found: {result['importedDeviceIdentifier']}", fg="yellow")
