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
