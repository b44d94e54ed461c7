"""`muster restrictions` drives the enrollment restriction API of a running server (R-196, R-204, R-209)."""

from __future__ import annotations

import json
from pathlib import Path

from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, running_muster
from tests.web.test_roles_cli import muster_cli

CONFIGS = f"{DM}/deviceEnrollmentConfigurations"


async def test_restrictions_cli(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        group = (await admin.post("/graph/beta/groups", json={"displayName": "Sales"})).json()["id"]
        created = await muster_cli(
            env, "restrictions", "create-platform", "Android min 9", "--platform", "android", "--min-os", "9.0",
            "--block-personal", "--block-manufacturer", "Acme",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
        android_id = created.output.strip()
        second = await muster_cli(env, "restrictions", "create-platform", "Android 2", "--platform", "android")
        limit = await muster_cli(env, "restrictions", "create-limit", "Three", "--limit", "3")
        assert limit.exit_code == 0, limit.output
        bad = await muster_cli(env, "restrictions", "create-limit", "Too many", "--limit", "16")
        assert bad.exit_code == 1 and "from 1 to 15" in bad.output

        stored = (await admin.get(f"{CONFIGS}/{android_id}")).json()["platformRestriction"]
        assert stored["osMinimumVersion"] == "9.0" and stored["blockedManufacturers"] == ["Acme"]
        assert stored["personalDeviceEnrollmentBlocked"] is True

        updated = await muster_cli(env, "restrictions", "update", android_id, "--allow-personal", "--name", "A9")
        assert updated.exit_code == 0, updated.output
        default = f"{DEFAULT_ORG_ID}_DefaultPlatformRestrictions"
        blocked = await muster_cli(env, "restrictions", "update", default, "--platform", "mac", "--block")
        assert blocked.exit_code == 0, blocked.output
        assert (await admin.get(f"{CONFIGS}/{default}")).json()["macOSRestriction"]["platformBlocked"] is True

        assigned = await muster_cli(env, "restrictions", "assign", android_id, "-g", group, "--all-users")
        assert assigned.exit_code == 0 and "2 target(s)" in assigned.output, assigned.output
        shown = await muster_cli(env, "restrictions", "show", android_id, "--json")
        assert [t["@odata.type"] for t in json.loads(shown.output)["assignments"]] == [
            "#microsoft.graph.groupAssignmentTarget",
            "#microsoft.graph.allLicensedUsersAssignmentTarget",
        ]
        moved = await muster_cli(env, "restrictions", "set-priority", second.output.strip(), "1")
        assert moved.exit_code == 0, moved.output
        listed = json.loads((await muster_cli(env, "restrictions", "list", "--json")).output)
        assert [(r["displayName"], r["priority"]) for r in listed if r.get("platformType") == "android"] == [
            ("Android 2", 1),
            ("A9", 2),
        ]
        table = await muster_cli(env, "restrictions", "list")
        assert table.exit_code == 0 and "displayName" in table.output
        assert (await muster_cli(env, "restrictions", "delete", android_id)).exit_code == 0
        refused = await muster_cli(env, "restrictions", "delete", default)
        assert refused.exit_code == 1 and "default" in refused.output
