"""`muster login` against a running server: the device code flow approved over HTTP while the CLI polls, and
client-credential logins (secret file, certificate) that renew themselves; the token is kept 0600 per server."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner, Result

from muster.cli.main import app
from tests.e2e.test_sign_in import PASSWORD, Browser, new_user
from tests.harness import running_muster, table_rows
from tests.web.test_oauth import claims_of, grant_role
from tests.web.test_oauth_assertions import certificate, pem


async def muster_cli(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_device_code_login_and_logout(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        user_id = await new_user(muster, "ada@example.com")
        await grant_role(muster, user_id, "Intune Administrator")
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "MUSTER_TOKEN": "",
        }
        login = asyncio.create_task(muster_cli(env, "login"))
        user_code = None
        while user_code is None and not login.done():
            rows = (await table_rows(muster.container.engine))["device_codes"]
            user_code = rows[0]["user_code"] if rows else None
            await asyncio.sleep(0.1)
        assert user_code is not None
        async with muster.device_client() as http:
            approved = await Browser(muster, http).submit(user_code, username="ada@example.com", password=PASSWORD)
            assert approved.status_code == 200, approved.text
        result = await login
        assert result.exit_code == 0, result.output
        assert f"enter the code {user_code[:4]}-{user_code[4:]}" in result.output

        stored = tmp_path / "config" / "muster" / "credentials.json"
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        entry = json.loads(stored.read_text())[muster.base_url]
        assert entry["method"] == "device" and claims_of(entry["access_token"])[1]["sub"] == user_id

        listed = await muster_cli(env, "apps", "list", "--json")
        assert listed.exit_code == 0 and json.loads(listed.output) == [], listed.output
        assert (await muster_cli(env, "logout")).exit_code == 0
        assert muster.base_url not in json.loads(stored.read_text())
        after = await muster_cli(env, "apps", "list")
        assert after.exit_code == 2 and "muster login" in after.output


async def test_client_credential_logins_renew_themselves(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        admin_env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
            "MUSTER_TOKEN": muster.admin_token,
        }
        created = await muster_cli(admin_env, "apps", "create", "nightly export", "--json")
        assert created.exit_code == 0, created.output
        application = json.loads(created.output)
        secret_file = tmp_path / "secret"
        added = await muster_cli(admin_env, "apps", "add-password", application["id"], "-o", str(secret_file))
        assert added.exit_code == 0 and secret_file.read_text().strip() not in added.output
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "client.crt").write_text(pem(certificate(key)))
        (tmp_path / "client.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        assert (
            await muster_cli(admin_env, "apps", "add-key", application["id"], str(tmp_path / "client.crt"))
        ).exit_code == 0
        await grant_role(muster, application["id"], "Read Only Operator")

        env = {**admin_env, "MUSTER_TOKEN": "", "XDG_CONFIG_HOME": str(tmp_path / "config")}
        stored = tmp_path / "config" / "muster" / "credentials.json"
        logins = [
            ("--client-secret-file", str(secret_file)),
            ("--certificate", str(tmp_path / "client.crt"), "--key", str(tmp_path / "client.key")),
        ]
        for options in logins:
            result = await muster_cli(env, "login", "--client-id", application["appId"], *options)
            assert result.exit_code == 0, result.output
            first = json.loads(stored.read_text())[muster.base_url]
            assert claims_of(first["access_token"])[1]["idtyp"] == "app"
            assert secret_file.read_text().strip() not in stored.read_text()  # where the secret is, not the secret
            stored.write_text(json.dumps({muster.base_url: {**first, "expires_at": 0}}))
            listed = await muster_cli(env, "apps", "list", "--json")
            assert listed.exit_code == 0, listed.output
            assert [a["displayName"] for a in json.loads(listed.output)] == ["nightly export"]
            renewed = json.loads(stored.read_text())[muster.base_url]
            assert renewed["access_token"] != first["access_token"] and renewed["expires_at"] > 0

        wrong = await muster_cli(env, "login", "--client-id", "unknown", "--client-secret-file", str(secret_file))
        assert wrong.exit_code == 1 and "invalid_client" not in wrong.output and "refused (401)" in wrong.output
        deleted = await muster_cli(admin_env, "apps", "delete", application["id"])
        assert deleted.exit_code == 0, deleted.output
