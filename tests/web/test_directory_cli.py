"""`muster users` and `muster groups` against a running server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_admin_cli import muster_cli
from tests.harness import running_muster


async def test_users_and_groups_from_the_command_line(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        result = await muster_cli(env, "users", "create", "ada@example.com", "--department", "Research")
        assert result.exit_code == 0, result.output
        ada_id = result.output.strip()

        csv_file = tmp_path / "people.csv"
        csv_file.write_text("userPrincipalName,displayName,department\ngrace@example.com,Grace,Navy\n")
        result = await muster_cli(env, "users", "import", str(csv_file))
        assert result.exit_code == 0, result.output
        assert "1 rows: 1 created, 0 updated, 0 unchanged" in result.output
        csv_file.write_text("userPrincipalName,accountEnabled\nnobody,maybe\n")
        result = await muster_cli(env, "users", "import", str(csv_file))
        assert result.exit_code == 1 and "row 2" in result.output

        result = await muster_cli(env, "users", "list", "--filter", "department eq 'navy'", "--json")
        assert [u["userPrincipalName"] for u in json.loads(result.output)] == ["grace@example.com"]

        result = await muster_cli(env, "groups", "create", "Researchers", "--rule", 'user.department -eq "research"')
        assert result.exit_code == 0, result.output
        dynamic_id = result.output.strip()
        result = await muster_cli(env, "groups", "create", "Staff")
        staff_id = result.output.strip()
        assert (await muster_cli(env, "groups", "members", "add", staff_id, ada_id)).exit_code == 0
        refused = await muster_cli(env, "groups", "members", "add", dynamic_id, ada_id)
        assert refused.exit_code == 1 and "dynamic membership" in refused.output

        result = await muster_cli(env, "users", "show", "ada@example.com", "--json")
        assert sorted(json.loads(result.output)["memberOf"]) == ["Researchers", "Staff"]
        result = await muster_cli(env, "groups", "show", dynamic_id)
        assert "rule: user.department" in result.output and ada_id in result.output

        assert (await muster_cli(env, "groups", "members", "remove", staff_id, ada_id)).exit_code == 0
        assert (await muster_cli(env, "users", "disable", "ada@example.com")).exit_code == 0
        result = await muster_cli(env, "users", "list", "--json")
        assert {u["userPrincipalName"]: u["accountEnabled"] for u in json.loads(result.output)} == {
            "ada@example.com": False,
            "grace@example.com": True,
        }
        result = await muster_cli(env, "groups", "list")
        assert "Researchers" in result.output and "dynamic" in result.output
