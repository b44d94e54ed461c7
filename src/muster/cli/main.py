"""The `muster` command: run the server, manage its database, and administer it over the API."""

from __future__ import annotations

import asyncio

import typer

from muster import __version__
from muster.cli import (
    ade,
    admin,
    apps,
    audit,
    categories,
    corporate_identifiers,
    devices,
    directory,
    doctor,
    enrollment_managers,
    enrollment_types,
    filters,
    identity,
    login,
    raw,
    reports,
    restrictions,
    roles,
    sim,
    terms,
)
from muster.config import ConfigurationError, Settings, load_settings

app = typer.Typer(help="Muster: self-hosted device enrollment and management.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")
ade.register(app)
devices.register(app)
admin.register(app)
sim.register(app)
login.register(app)
apps.register(app)
doctor.register(app)
roles.register(app)
audit.register(app)
directory.register(app)
identity.register(app)
raw.register(app)
filters.register(app)
reports.register(app)
corporate_identifiers.register(app)
enrollment_managers.register(app)
categories.register(app)
terms.register(app)
restrictions.register(app)
enrollment_types.register(app)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as error:
        typer.secho(str(error), err=True, fg="red")
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print Muster's version."""
    typer.echo(__version__)


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (safe to run on every start)."""
    from muster.store.migrate import current_revision, upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    revision = asyncio.run(current_revision(settings.effective_database_url))
    typer.echo(f"database schema is up to date (revision {revision})")


@app.command()
def serve(
    demo: bool = typer.Option(False, help="Also start simulated Apple services and devices that enroll."),
) -> None:
    """Run the server (HTTPS on the embedded default: SQLite, generated CA and TLS certificate)."""
    import uvicorn

    from muster import logs
    from muster.app import prepare_server, tls_paths
    from muster.store.migrate import upgrade

    settings = _settings()
    logs.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    try:
        token_file = asyncio.run(prepare_server(settings))
    except ConfigurationError as error:
        typer.secho(str(error), err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(f"Muster {__version__} serving devices at {settings.effective_public_url}")
    if settings.apple_device_ca_file is None:
        typer.echo(
            "Note: MUSTER_APPLE_DEVICE_CA_FILE is not set, so ADE profile requests are not checked for an "
            "Apple device signature (see docs/decisions.md)."
        )
    typer.echo(f"Admin API: {settings.effective_public_url}/graph/beta/deviceManagement (OpenAPI at /docs)")
    if token_file:
        typer.echo(f"An administrator API token was written to {token_file.resolve()} (shown nowhere else).")
    if demo:
        _serve_demo(settings)
        return
    cert, key = tls_paths(settings) if settings.tls else (None, None)
    uvicorn.run(
        "muster.web.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
    )


def _serve_demo(settings: Settings) -> None:
    from muster.cli.demo import serve_demo

    typer.secho(
        "DEMO MODE: APNs is simulated and virtual devices enroll in this server; do not use it for real devices.",
        fg="yellow",
    )
    if settings.workers > 1:
        typer.secho("DEMO MODE serves with one worker process (the simulators live in it).", fg="yellow")
    try:
        asyncio.run(serve_demo(settings))
    except KeyboardInterrupt:
        typer.echo("demo stopped")
