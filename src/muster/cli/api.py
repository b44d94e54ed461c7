"""The CLI's connection to a Muster server's admin API.

Connection: `MUSTER_URL` (default https://localhost:8443) and `MUSTER_TOKEN`, or `MUSTER_TOKEN_FILE`, or the token
`muster login` stored for that server, or the token file the embedded default writes in ./data;
`MUSTER_CA_FILE` to trust a private CA.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

console = Console()
DM = "/graph/beta/deviceManagement"


def server_url() -> str:
    return os.environ.get("MUSTER_URL", "https://localhost:8443").rstrip("/")


def tls_verify(url: str) -> ssl.SSLContext | bool:
    ca_file = os.environ.get("MUSTER_CA_FILE")
    if ca_file is None and Path("data/tls/server.crt").exists() and url.startswith("https://localhost"):
        ca_file = "data/tls/server.crt"  # the embedded default's own certificate chain
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


def client() -> httpx.Client:
    url = server_url()
    token = os.environ.get("MUSTER_TOKEN")
    if not token and "MUSTER_TOKEN_FILE" not in os.environ:
        from muster.cli.login import stored_token

        token = stored_token(url)
    if not token:
        token_file = Path(os.environ.get("MUSTER_TOKEN_FILE", "data/admin-token"))
        if not token_file.exists():
            typer.secho(
                "Not signed in: run `muster login`, or set MUSTER_TOKEN or MUSTER_TOKEN_FILE.", err=True, fg="red"
            )
            raise typer.Exit(2)
        token = token_file.read_text().strip()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, verify=tls_verify(url), timeout=60)


def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    with client() as http:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            typer.secho(f"Cannot reach Muster: {error}", err=True, fg="red")
            raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        typer.secho(f"{response.status_code}: {message}", err=True, fg="red")
        raise typer.Exit(1)
    return response


def collection(path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a Graph collection, following `@odata.nextLink` to the last page."""
    page = call("GET", path, params=params).json()
    items = list(page["value"])
    while "@odata.nextLink" in page:
        page = call("GET", page["@odata.nextLink"]).json()
        items += page["value"]
    return items


def show(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    if as_json or columns is None:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(*columns)
    for row in data:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def show_one(item: dict[str, Any], as_json: bool) -> None:
    """One resource: its JSON, or a table of its properties (nested values as compact JSON)."""
    if as_json:
        typer.echo(json.dumps(item, indent=2))
        return
    table = Table("property", "value")
    for name, value in item.items():
        if name != "@odata.context":
            table.add_row(name, value if isinstance(value, str) else "" if value is None else json.dumps(value))
    console.print(table)


def patch(path: str, body: dict[str, Any]) -> httpx.Response:
    """PATCH the properties given on the command line; none given is a usage error, not an empty request."""
    if not body:
        typer.secho("Nothing to change: give at least one of the options (see --help).", err=True, fg="red")
        raise typer.Exit(2)
    return call("PATCH", path, json=body)


def present(**properties: Any) -> dict[str, Any]:
    """The properties given on the command line (a PATCH changes only those)."""
    return {name: value for name, value in properties.items() if value is not None}


def pairs(values: list[str], option: str) -> dict[str, str]:
    """`key=value` options as a dict; anything else is a usage error."""
    parsed = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            typer.secho(f"{option}: expected key=value, got {value!r}", err=True, fg="red")
            raise typer.Exit(2)
        parsed[key] = text
    return parsed


def json_or_text(text: str) -> Any:
    """A value given on the command line: JSON when it parses (true, 3, ["a"]), text otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_source(path: Path) -> str:
    """A file's text; `-` is standard input."""
    try:
        return typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        typer.secho(f"Cannot read {path}: {error}", err=True, fg="red")
        raise typer.Exit(2) from None


def read_json(argument: str) -> Any:
    """JSON given inline, or `@file` (`@-`: standard input)."""
    text = read_source(Path(argument[1:])) if argument.startswith("@") else argument
    try:
        return json.loads(text)
    except ValueError as error:
        typer.secho(f"Cannot read JSON from {argument[:60]!r}: {error}", err=True, fg="red")
        raise typer.Exit(2) from None


def write_private(path: Path, text: str) -> None:
    """Write a secret to a file only its owner can read (mode 0600, even if the file existed)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


def reveal_secret(label: str, secret: str, output: Path | None) -> None:
    """Hand a new secret to the admin once: into `output` (0600), or on the terminal with a warning."""
    if output is not None:
        write_private(output, secret)
        typer.echo(f"{label} written to {output} (mode 0600); Muster cannot show it again.")
        return
    typer.echo(f"secret: {secret}")
    typer.secho(f"Store this {label} now: it is shown only this once.", fg="yellow")
