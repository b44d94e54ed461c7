"""`muster api`: one request to the admin API, for anything the other commands do not cover."""

from __future__ import annotations

import json
from typing import Any

import typer

from muster.cli.api import call, pairs, read_json

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def register(app: typer.Typer) -> None:
    app.command("api")(api_request)


def api_request(
    method: str = typer.Argument(..., help="GET, POST, PATCH, PUT or DELETE."),
    path: str = typer.Argument(..., help="e.g. /graph/beta/deviceManagement/managedDevices"),
    data: str = typer.Option(None, "--data", "-d", help="The JSON body, or @file (@- reads standard input)."),
    param: list[str] = typer.Option([], "--param", "-p", help="A query parameter, e.g. -p '$top=5'."),
) -> None:
    """Send one request to the admin API and print the answer (an error prints its message and exits 1)."""
    verb = method.upper()
    if verb not in METHODS:
        typer.secho(f"METHOD must be one of {', '.join(METHODS)}", err=True, fg="red")
        raise typer.Exit(2)
    # Only paths on the configured server: the bearer token must never travel to another host.
    if not path.startswith("/") or path.startswith("//"):
        typer.secho("PATH must start with a single /, e.g. /graph/beta/users", err=True, fg="red")
        raise typer.Exit(2)
    options: dict[str, Any] = {"params": pairs(param, "--param")}
    if data is not None:
        options["json"] = read_json(data)
    response = call(verb, path, **options)
    if not response.content:
        return
    try:
        typer.echo(json.dumps(response.json(), indent=2))
    except ValueError:
        typer.echo(response.content)
