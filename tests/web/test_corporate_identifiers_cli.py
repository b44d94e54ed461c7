"""`muster corporate-identifiers` and `muster dem` drive the admin API of a running server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner, Result

from muster.cli.main import app
from tests.harness import DM, running_muster
from tests.web.test_enrollment_managers import add_users


async def muster_cli(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_corporate_identifiers_cli_imports_a_file_in_batches_003_1071(tmp_path: Path) -> None:
    """A file split into several bulk calls with progress; CID-08 (003_729e51c15a5a5608.txt:1071) a repeated
    identifier is sent from its first line only, even in a later batch; row errors are listed by line."""
    async with running_muster(tmp_path / "server") as muster, muster.admin() as admin:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        file = tmp_path / "serials.csv"
        file.write_text("".join(f"SER{n:04d},desk {n}\n" for n in range(25)) + "ser0003,later\nBAD.1\n")
        imported = await muster_cli(
            env, "corporate-identifiers", "import", str(file), "--type", "serialNumber", "--batch-size", "10"
        )
        assert imported.exit_code == 0, imported.output
        assert "25 identifier(s) imported or already there, 1 not imported" in imported.output
        assert "line 27" in imported.output
        listed = await muster_cli(env, "corporate-identifiers", "list", "--all", "--json")
        rows = {r["importedDeviceIdentifier"]: r["description"] for r in json.loads(listed.output)}
        assert len(rows) == 25 and rows["SER0003"] == "desk 3"

        added = await muster_cli(
            env, "corporate-identifiers", "add", "01234567890128", "--type", "imei", "--details", "x"
        )
        assert added.exit_code == 0, added.output
        found = await muster_cli(env, "corporate-identifiers", "search", "012345678901280", "--type", "imei", "--json")
        assert json.loads(found.output) == []  # 15 digits with a wrong check digit: not a valid IMEI, no match
        found = await muster_cli(env, "corporate-identifiers", "search", "01234567890128", "--type", "imei", "--json")
        assert [r["id"] for r in json.loads(found.output)] == [added.output.strip()]
        deleted = await muster_cli(env, "corporate-identifiers", "delete", "ser0001", "NOPE")
        assert "deleted 1 identifier(s)" in deleted.output and "not found: NOPE" in deleted.output
        missing = await muster_cli(env, "corporate-identifiers", "import", str(tmp_path / "none.csv"), "--type", "imei")
        assert missing.exit_code == 2
        total = (await admin.get(f"{DM}/importedDeviceIdentities", params={"$count": "true"})).json()["@odata.count"]
        assert total == 25


async def test_dem_cli(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        await add_users(muster.container.engine, "Kiosk@example.com")
        added = await muster_cli(env, "dem", "add", "kiosk@example.com")
        assert added.exit_code == 0 and "Kiosk@example.com is a device enrollment manager" in added.output
        listed = await muster_cli(env, "dem", "list", "--json")
        assert [m["userPrincipalName"] for m in json.loads(listed.output)] == ["Kiosk@example.com"]
        refused = await muster_cli(env, "dem", "add", "nobody@example.com")
        assert refused.exit_code == 1 and "no user" in refused.output
        removed = await muster_cli(env, "dem", "remove", "KIOSK@example.com")
        assert removed.exit_code == 0, removed.output
        again = await muster_cli(env, "dem", "remove", "kiosk@example.com")
        assert again.exit_code == 1 and "is not a device enrollment manager" in again.output
