"""`muster enrollment-types` drives the enrollment type profile API of a running server (seed-catalog-C §1.10,
R-211; 003:<line> for 003_729e51c15a5a5608.txt)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import DM, running_muster
from tests.web.test_roles_cli import muster_cli

PROFILES = f"{DM}/appleUserInitiatedEnrollmentProfiles"


async def test_enrollment_types_cli(tmp_path: Path) -> None:
    """003:5459-5470 (types, the choice), 003:5474-5489 (user groups), 003:5513-5521 (priority, R-211)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        user = (await admin.post("/graph/beta/users", json={"userPrincipalName": "ada@example.com"})).json()["id"]
        group = (await admin.post("/graph/beta/groups", json={"displayName": "Sales"})).json()["id"]
        ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
        assert (await admin.post(f"/graph/beta/groups/{group}/members/$ref", json=ref)).status_code == 204

        created = await muster_cli(env, "enrollment-types", "create", "Everyone", "--type", "user")
        assert created.exit_code == 0, created.output
        everyone = created.output.strip()
        chosen = await muster_cli(env, "enrollment-types", "create", "Sales", "--type", "choice", "--description", "d")
        assert chosen.exit_code == 0, chosen.output
        sales = chosen.output.strip()
        stored = (await admin.get(f"{PROFILES}/{sales}")).json()
        assert [o["enrollmentType"] for o in stored["availableEnrollmentTypeOptions"]] == ["user", "device"]

        assert (await muster_cli(env, "enrollment-types", "assign", everyone, "--all-users")).exit_code == 0
        assigned = await muster_cli(env, "enrollment-types", "assign", sales, "-g", group)
        assert assigned.exit_code == 0 and "1 target(s)" in assigned.output, assigned.output
        resolved = json.loads(
            (await muster_cli(env, "enrollment-types", "resolve", "ada@example.com", "--json")).output
        )
        assert resolved["profile"]["displayName"] == "Everyone" and resolved["offeredEnrollmentTypes"] == ["user"]

        moved = await muster_cli(env, "enrollment-types", "set-priority", sales, "1")
        assert moved.exit_code == 0, moved.output
        resolved = json.loads(
            (await muster_cli(env, "enrollment-types", "resolve", "ada@example.com", "--json")).output
        )
        assert resolved["profile"]["displayName"] == "Sales" and resolved["userChooses"] is True

        updated = await muster_cli(env, "enrollment-types", "update", everyone, "--name", "All", "--type", "device")
        assert updated.exit_code == 0, updated.output
        listed = json.loads((await muster_cli(env, "enrollment-types", "list", "--json")).output)
        assert [(p["displayName"], p["priority"], p["defaultEnrollmentType"]) for p in listed] == [
            ("Sales", 1, "device"),
            ("All", 2, "device"),
        ]
        shown = json.loads((await muster_cli(env, "enrollment-types", "show", sales, "--json")).output)
        assert [target["groupId"] for target in shown["assignments"]] == [group]
        table = await muster_cli(env, "enrollment-types", "list")
        assert table.exit_code == 0 and "displayName" in table.output
        unknown = await muster_cli(env, "enrollment-types", "resolve", "nobody@example.com")
        assert unknown.exit_code == 1 and "not found" in unknown.output
        assert (await muster_cli(env, "enrollment-types", "delete", everyone)).exit_code == 0
        assert [p["displayName"] for p in (await admin.get(PROFILES)).json()["value"]] == ["Sales"]
