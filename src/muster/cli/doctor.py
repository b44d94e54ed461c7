"""`muster doctor`: check this installation's configuration, database and certificates without changing them.

It reads what `muster serve` would use (settings, files, the database) and judges it with services/doctor.py;
nothing is created or written, so it is safe to run against a production server at any time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import typer
from alembic.script import ScriptDirectory
from cryptography import x509
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.app import tls_paths
from muster.config import ConfigurationError, Settings, load_settings
from muster.domain.rbac import Scope
from muster.pki.secretbox import SecretBox
from muster.services import doctor as rules
from muster.services.doctor import Check, Status
from muster.services.server_identity import DEVICE_CA, PROFILE_SIGNING
from muster.store.ade_tokens import SqlTokenStore
from muster.store.engine import create_engine
from muster.store.key_pairs import SqlKeyPairStore
from muster.store.migrate import alembic_config, current_revision
from muster.store.push_certificates import SqlPushCertificateStore
from muster.store.tables import DEFAULT_ORG_ID

STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}
FILE_SETTINGS = (  # the master key file has its own check
    "tls_cert_file",
    "tls_key_file",
    "profile_signing_cert_file",
    "profile_signing_key_file",
    "apple_device_ca_file",
    "apns_ca_file",
)


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print the checks as JSON instead of a table."),
) -> None:
    """Check configuration, database, certificates and their expiry; exit 1 when a check fails."""
    try:
        settings = load_settings()
    except ConfigurationError as error:
        checks = [Check("configuration", Status.FAIL, str(error))]
    else:
        loaded = Check("configuration", Status.OK, f"loaded; data directory {settings.data_dir.resolve()}")
        checks = [loaded, *asyncio.run(gather(settings, datetime.now(UTC)))]
    verdict = rules.overall(checks)
    if json_output:
        body = {"status": verdict.value, "checks": [{**vars(c), "status": c.status.value} for c in checks]}
        typer.echo(json.dumps(body, indent=2))
    else:
        _print_table(checks, verdict)
    if verdict is Status.FAIL:
        raise typer.Exit(1)


def _print_table(checks: list[Check], verdict: Status) -> None:
    table = Table(title="muster doctor")
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Detail", overflow="fold")
    for check in checks:
        table.add_row(escape(check.name), f"[{STYLES[check.status]}]{check.status.value}[/]", escape(check.detail))
    console = Console()
    console.print(table)
    console.print(f"Overall: [{STYLES[verdict]}]{verdict.value}[/]")


async def gather(settings: Settings, now: datetime) -> list[Check]:
    checks = [rules.public_url(settings.effective_public_url, tls=settings.tls), *_files(settings)]
    checks += [_master_key(settings), _server_tls(settings, now)]
    if settings.profile_signing_cert_file is not None:
        signer = _first_certificate(settings.profile_signing_cert_file)
        if signer is not None:
            checks.append(rules.certificate("profile signing certificate", signer, now))
    return checks + await _database(settings, now)


def _files(settings: Settings) -> list[Check]:
    checks = []
    for name in FILE_SETTINGS:
        path: Path | None = getattr(settings, name)
        if path is None:
            continue
        label = f"MUSTER_{name.upper()}"
        try:
            path.read_bytes()
        except OSError as error:
            checks.append(Check(label, Status.FAIL, f"{path}: cannot read ({error.strerror})"))
        else:
            checks.append(Check(label, Status.OK, f"{path} is readable"))
    return checks


def _master_key(settings: Settings) -> Check:
    name = "master key"
    if settings.master_key:
        try:
            SecretBox.decode_key(settings.master_key)
        except ValueError as error:
            return Check(name, Status.FAIL, f"MUSTER_MASTER_KEY: {error}")
        return Check(name, Status.OK, "from MUSTER_MASTER_KEY")
    path = settings.master_key_file or settings.data_dir / "master.key"
    if not path.exists():
        if settings.master_key_file:
            return Check(name, Status.FAIL, f"{path} does not exist")
        return Check(name, Status.WARN, f"none yet: the first start generates {path}; back it up")
    try:
        valid = len(bytes.fromhex(path.read_text().strip())) == 32
    except (OSError, ValueError):
        valid = False
    if not valid:
        return Check(name, Status.FAIL, f"{path}: must hold 64 hexadecimal characters")
    return Check(name, Status.OK, f"from {path}: keep a backup, secrets cannot be decrypted without it")


def _server_tls(settings: Settings, now: datetime) -> Check:
    name = "server TLS certificate"
    if not settings.tls:
        return Check(name, Status.OK, "TLS off: a TLS-terminating proxy serves HTTPS")
    cert_path, _ = tls_paths(settings)
    if not cert_path.exists() and settings.tls_cert_file is None:
        return Check(name, Status.WARN, f"none yet: the first start issues {cert_path} from the device CA")
    cert = _first_certificate(cert_path)
    if cert is None:
        return Check(name, Status.FAIL, f"{cert_path}: no readable PEM certificate")
    return rules.certificate(name, cert, now)


def _first_certificate(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError):
        return None


async def _database(settings: Settings, now: datetime) -> list[Check]:
    url = settings.effective_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():  # connecting would create an empty one
        return [Check("database", Status.FAIL, f"{sqlite_file} does not exist: run `muster db upgrade`")]
    engine = create_engine(url)
    try:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:  # whatever the driver raises, the database is unusable
            return [Check("database", Status.FAIL, f"{shown}: unreachable ({type(error).__name__}: {error})")]
        checks = [Check("database", Status.OK, f"{shown} answers"), *_disk(url)]
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        schema = rules.schema(await current_revision(url), head)
        checks.append(schema)
        if schema.status is Status.OK:
            checks += await _stored_certificates(engine, settings, now)
        return checks
    finally:
        await engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).resolve()


def _disk(url: str) -> list[Check]:
    sqlite_file = _sqlite_file(url)
    if sqlite_file is None:
        return []
    return [rules.disk_space(str(sqlite_file.parent), shutil.disk_usage(sqlite_file.parent).free)]


async def _stored_certificates(engine: AsyncEngine, settings: Settings, now: datetime) -> list[Check]:
    checks = []
    key_pairs = SqlKeyPairStore(engine)
    purposes = {"device CA": DEVICE_CA}
    if settings.profile_signing_cert_file is None:
        purposes["profile signing certificate"] = PROFILE_SIGNING
    for name, purpose in purposes.items():
        stored = await key_pairs.get(org_id=DEFAULT_ORG_ID, purpose=purpose)
        if stored is None:
            checks.append(Check(name, Status.WARN, "none yet: created on first start"))
        else:
            checks.append(rules.certificate(name, x509.load_pem_x509_certificate(stored[0]), now))
    push = await SqlPushCertificateStore(engine).latest(DEFAULT_ORG_ID, "active")
    if push is None or push.not_after is None:
        checks.append(Check("APNs push certificate", Status.WARN, "none: devices cannot be enrolled or woken"))
    else:
        checks.append(rules.expiry("APNs push certificate", push.not_after, now))
    for token in await SqlTokenStore(engine).list_for_org(DEFAULT_ORG_ID, Scope(everything=True)):
        if token.token_expires_at is not None:
            checks.append(rules.expiry(f"ADE token {token.name}", token.token_expires_at, now))
    return checks
