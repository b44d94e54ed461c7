"""`muster roles` drives the role API of a running server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner, Result

from muster.cli.main import app
from muster.domain.rbac import BuiltInRole, Permission
from tests.harness import DM, running_muster


async def muster_cli(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_roles_cli(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        listed = await muster_cli(env, "roles", "list", "--json")
        assert listed.exit_code == 0, listed.output
        help_desk = next(r for r in json.loads(listed.output) if r["displayName"] == BuiltInRole.HELP_DESK_OPERATOR)
        shown = await muster_cli(env, "roles", "show", help_desk["id"])
        assert Permission.REMOTE_TASKS_WIPE.value in shown.output

        created = await muster_cli(env, "roles", "tags", "create", "Paris", "--description", "Paris office")
        assert created.exit_code == 0, created.output
        tag_id = created.output.strip()
        tags = await muster_cli(env, "roles", "tags", "list", "--json")
        assert {t["displayName"] for t in json.loads(tags.output)} == {"Default", "Paris"}

        role = await muster_cli(env, "roles", "create", "Device reader", "-p", Permission.MANAGED_DEVICES_READ.value)
        assert role.exit_code == 0, role.output
        bad = await muster_cli(env, "roles", "create", "Bad", "-p", "Microsoft.Intune_Nope_Read")
        assert bad.exit_code == 1 and "Microsoft.Intune_Nope_Read" in bad.output

        assigned = await muster_cli(env, "roles", "assign", role.output.strip(), "-m", "group-1", "-t", tag_id)
        assert assigned.exit_code == 0, assigned.output
        assignment = (await admin.get(f"{DM}/roleAssignments/{assigned.output.strip()}")).json()
        assert assignment["members"] == ["group-1"] and assignment["roleScopeTagIds"] == [tag_id]
        listing = await muster_cli(env, "roles", "assignments")
        assert "Device reader" in listing.output

        in_use = await muster_cli(env, "roles", "tags", "delete", tag_id)
        assert in_use.exit_code == 1 and "in use" in in_use.output
