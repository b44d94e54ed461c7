"""`muster ade` links a token, uploads its server token and lists the synced devices over the admin API."""

from __future__ import annotations

import json
from pathlib import Path

from muster.simulators.abm import FakeAbm, serve_fake_abm
from tests.cli.test_admin_cli import muster_cli
from tests.harness import running_muster


async def test_link_upload_and_list(tmp_path: Path) -> None:
    abm = FakeAbm(org_name="Example Corp")
    async with serve_fake_abm(abm) as abm_url, running_muster(tmp_path / "m", dep_url=abm_url) as muster:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        key_file = tmp_path / "dep.pem"
        result = await muster_cli(env, "ade", "create", "--name", "Main", "-o", str(key_file))
        assert result.exit_code == 1 and "send both user and device information to Apple" in result.output
        result = await muster_cli(env, "ade", "create", "--agree", "--name", "Main", "-o", str(key_file))
        assert result.exit_code == 0, result.output
        token_id = result.output.split()[1].rstrip(":")
        server = abm.add_server("Muster MDM", key_file.read_bytes())
        serials = abm.seed_devices(server, 12, families=("iPhone",))
        token_file = tmp_path / "server_token.p7m"
        token_file.write_bytes(server.download_token())
        result = await muster_cli(env, "ade", "upload", token_id, str(token_file), "--apple-id", "it@example.com")
        assert result.exit_code == 0, result.output
        await muster.container.ade_sync.wait_idle()
        result = await muster_cli(env, "ade", "imported-devices", "list", token_id, "--json")
        assert result.exit_code == 0, result.output
        assert sorted(d["serialNumber"] for d in json.loads(result.output)) == sorted(serials)
        result = await muster_cli(env, "ade", "list", "--json")
        assert json.loads(result.output)[0]["syncedDeviceCount"] == 12
