"""`muster doctor` against prepared data directories: healthy, never started, expired, misconfigured; and the
expiry rule itself."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from typer.testing import CliRunner, Result

from muster.app import prepare_server, tls_paths
from muster.cli.main import app
from muster.config import Settings
from muster.pki.certs import certificate_pem
from muster.pki.secretbox import SecretBox
from muster.services.doctor import EXPIRY_WARNING, Status, expiry
from muster.store.ade_tokens import SqlTokenStore
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.tables import DEFAULT_ORG_ID, dep_tokens
from tests.harness import fake_apple, running_muster, settings_environment

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "MUSTER_DATA_DIR": str(data_dir),
        "MUSTER_PUBLIC_URL": "https://mdm.example.com",
        "MUSTER_MASTER_KEY": base64.b64encode(SecretBox.generate_key()).decode(),
        **extra,
    }


async def prepared(data_dir: Path, env: dict[str, str]) -> None:
    """A data directory as `muster serve` leaves it after its first start."""
    settings = Settings(data_dir=data_dir, public_url=env["MUSTER_PUBLIC_URL"], master_key=env["MUSTER_MASTER_KEY"])
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    await prepare_server(settings)


async def run_doctor(env: dict[str, str], *options: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, ["doctor", *options], env=env)


def statuses(result: Result) -> dict[str, str]:
    body: dict[str, Any] = json.loads(result.output)
    return {check["name"]: check["status"] for check in body["checks"]} | {"overall": body["status"]}


def self_signed(not_before: datetime, not_after: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mdm.example.com")])
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number()).not_valid_before(not_before)
    return certificate_pem(builder.not_valid_after(not_after).sign(key, hashes.SHA256()))


async def test_a_started_installation_passes_with_a_warning_for_the_missing_push_certificate(tmp_path: Path) -> None:
    env = environment(tmp_path)
    await prepared(tmp_path, env)
    result = await run_doctor(env, "--json")
    assert result.exit_code == 0, result.output
    assert statuses(result) == {
        "configuration": "ok",
        "public URL": "ok",
        "master key": "ok",
        "server TLS certificate": "ok",
        "database": "ok",
        "disk space": statuses(result)["disk space"],  # depends on this machine
        "database schema": "ok",
        "device CA": "ok",
        "profile signing certificate": "ok",
        "APNs push certificate": "warn",
        "overall": "warn",
    }
    table = await run_doctor(env)
    assert table.exit_code == 0
    assert "APNs push certificate" in table.output and "Overall: warn" in table.output


async def test_a_never_started_installation_fails_and_says_what_to_run(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", MUSTER_MASTER_KEY="")
    result = await run_doctor(env, "--json")
    assert result.exit_code == 1, result.output
    checks = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert checks["database"]["status"] == "fail" and "muster db upgrade" in checks["database"]["detail"]
    assert checks["master key"]["status"] == "warn"
    assert checks["server TLS certificate"]["status"] == "warn"
    assert not (tmp_path / "data").exists()  # the doctor looks, it never creates


async def test_an_expired_tls_certificate_and_an_unreadable_file_fail(tmp_path: Path) -> None:
    env = environment(tmp_path, MUSTER_APPLE_DEVICE_CA_FILE=str(tmp_path / "missing.pem"))
    await prepared(tmp_path, env)
    now = datetime.now(UTC)
    cert_path, _ = tls_paths(Settings(data_dir=tmp_path))
    cert_path.write_bytes(self_signed(now - timedelta(days=400), now - timedelta(days=1)))
    result = await run_doctor(env, "--json")
    assert result.exit_code == 1
    checks = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert checks["server TLS certificate"]["status"] == "fail"
    assert checks["server TLS certificate"]["detail"].startswith("mdm.example.com: expired on")
    assert checks["MUSTER_APPLE_DEVICE_CA_FILE"]["status"] == "fail"

    cert_path.write_bytes(self_signed(now - timedelta(days=1), now + timedelta(days=10)))
    soon = statuses(await run_doctor(env, "--json"))
    assert soon["server TLS certificate"] == "warn"


async def test_an_invalid_configuration_or_an_unreachable_database_fails(tmp_path: Path) -> None:
    result = await run_doctor(environment(tmp_path, MUSTER_PORT="0"), "--json")
    assert result.exit_code == 1
    assert statuses(result) == {"configuration": "fail", "overall": "fail"}

    unreachable = environment(tmp_path, MUSTER_DATABASE_URL="postgresql://muster:secret@127.0.0.1:9/muster")
    result = await run_doctor(unreachable, "--json")
    assert result.exit_code == 1
    checks = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert checks["database"]["status"] == "fail"
    assert "secret" not in result.output
    table = await run_doctor(unreachable)  # the driver's message, brackets and all, is printed as text
    assert table.exit_code == 1 and "Overall: fail" in table.output and "secret" not in table.output


async def test_an_installed_push_certificate_is_checked(tmp_path: Path) -> None:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        result = await run_doctor(settings_environment(muster.settings), "--json")
    checks = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert checks["APNs push certificate"]["status"] == "ok", checks
    assert checks["public URL"]["status"] == "warn"  # the harness serves https://localhost


async def test_ade_tokens_are_checked_for_expiry(tmp_path: Path) -> None:
    env = environment(tmp_path)
    await prepared(tmp_path, env)
    engine = create_engine(Settings(data_dir=tmp_path).effective_database_url)
    now = datetime.now(UTC)
    try:
        tokens = SqlTokenStore(engine)
        for name, left in (("Schools", timedelta(days=200)), ("Sales", timedelta(days=12)), ("Old", -timedelta(1))):
            await tokens.add(
                token_id=name,
                org_id=DEFAULT_ORG_ID,
                name=name,
                certificate_pem="",
                key_encrypted=b"",
                tag_ids=[],
                now=now,
            )
            expires = update(dep_tokens).where(dep_tokens.c.id == name).values(token_expires_at=now + left)
            async with engine.begin() as conn:
                await conn.execute(expires)
    finally:
        await engine.dispose()
    result = await run_doctor(env, "--json")
    assert result.exit_code == 1
    found = statuses(result)
    assert (found["ADE token Schools"], found["ADE token Sales"], found["ADE token Old"]) == ("ok", "warn", "fail")


@given(st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650)))
def test_expiry_fails_when_past_and_warns_within_thirty_days(left: timedelta) -> None:
    verdict = expiry("certificate", NOW + left, NOW).status
    if left <= timedelta(0):
        assert verdict is Status.FAIL
    elif left < EXPIRY_WARNING:
        assert verdict is Status.WARN
    else:
        assert verdict is Status.OK
