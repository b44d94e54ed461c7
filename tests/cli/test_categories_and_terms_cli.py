"""`muster categories` and `muster terms` against a running server (seed-catalog-A §2.7, §2.8).

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from muster.domain.rbac import Scope
from muster.store.tables import DEFAULT_ORG_ID
from tests.cli.test_admin_cli import muster_cli
from tests.harness import RunningMuster, running_muster
from tests.web.test_admin_access import add_device

EVERYTHING = Scope(everything=True)


def _env(muster: RunningMuster) -> dict[str, str]:
    return {
        "MUSTER_URL": muster.base_url,
        "MUSTER_TOKEN": muster.admin_token,
        "MUSTER_CA_FILE": str(muster.tls_ca_file),
    }


async def test_categories_from_the_command_line_cat_02_003_1539_cat_07_003_1566(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        env = _env(muster)
        created = await muster_cli(env, "categories", "create", "HR", "--description", "Human resources")
        assert created.exit_code == 0, created.output
        hr = created.output.strip()
        duplicate = await muster_cli(env, "categories", "create", "hr")
        assert duplicate.exit_code == 1 and "409" in duplicate.output
        listed = json.loads((await muster_cli(env, "categories", "list", "--json")).output)
        assert [(c["id"], c["description"]) for c in listed] == [(hr, "Human resources")]

        device = await add_device(muster.container.engine, "0")
        assert (await muster_cli(env, "categories", "set-device", device, hr)).exit_code == 0
        shown = await muster.container.device_categories.of_device(DEFAULT_ORG_ID, device, EVERYTHING)
        assert shown is not None and shown.display_name == "HR"
        usage = await muster_cli(env, "categories", "set-device", device)
        assert usage.exit_code == 2

        group = await muster_cli(env, "groups", "create", "HR devices", "--rule", 'device.deviceCategory -eq "HR"')
        assert group.exit_code == 0, group.output
        renamed = await muster_cli(env, "categories", "update", hr, "--name", "People")
        assert renamed.exit_code == 0 and "warning: dynamic group 'HR devices'" in renamed.output
        assert (await muster_cli(env, "categories", "set-device", device, "--clear")).exit_code == 0
        assert await muster.container.device_categories.of_device(DEFAULT_ORG_ID, device, EVERYTHING) is None
        assert (await muster_cli(env, "categories", "delete", hr)).exit_code == 0
        assert json.loads((await muster_cli(env, "categories", "list", "--json")).output) == []


async def test_terms_from_the_command_line_tc_02_003_1211_tc_07_003_1269(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        env = _env(muster)
        text = tmp_path / "terms.txt"
        text.write_text("1. Be nice.\n2. Keep the device safe.\n")
        created = await muster_cli(
            env,
            "terms",
            "create",
            "Corporate terms",
            "--title",
            "Device terms",
            "--text",
            str(text),
            "--summary",
            "We may wipe corporate data.",
        )
        assert created.exit_code == 0, created.output
        terms_id = created.output.strip()
        assigned = await muster_cli(env, "terms", "assign", terms_id, "--all-users", "--exclude", "g-contractors")
        assert assigned.exit_code == 0 and "2 target(s)" in assigned.output
        shown = json.loads((await muster_cli(env, "terms", "show", terms_id, "--json")).output)
        assert shown["bodyText"] == text.read_text() and shown["version"] == 1
        assert [t["@odata.type"] for t in shown["assignments"]] == [
            "#microsoft.graph.allLicensedUsersAssignmentTarget",
            "#microsoft.graph.exclusionGroupAssignmentTarget",
        ]
        fixed = await muster_cli(env, "terms", "update", terms_id, "--summary", "We may wipe company data.")
        assert fixed.exit_code == 0 and "(version 1)" in fixed.output
        reaccept = await muster_cli(env, "terms", "update", terms_id, "--require-reaccept")
        assert reaccept.exit_code == 0 and "(version 2)" in reaccept.output
        listed = json.loads((await muster_cli(env, "terms", "list", "--json")).output)
        assert [(t["id"], t["version"]) for t in listed] == [(terms_id, 2)]

        user = await muster.container.directory.create_user(
            DEFAULT_ORG_ID, {"user_principal_name": "ada@example.com", "display_name": "Ada"}, actor="t", source="api"
        )
        when = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        await muster.container.terms.accept(DEFAULT_ORG_ID, user["id"], "ada@example.com", terms_id, 2, when)
        table = await muster_cli(env, "terms", "acceptances", terms_id, "--json")
        assert [(a["userDisplayName"], a["acceptedLatest"]) for a in json.loads(table.output)] == [("Ada", True)]
        exported = await muster_cli(env, "terms", "acceptances", terms_id, "--csv")
        rows = list(csv.reader(io.StringIO(exported.output)))
        assert rows[1] == ["Ada", "2", "2026-11-23T08:00:00Z", "Yes", "ada@example.com"]
        assert (await muster_cli(env, "terms", "delete", terms_id)).exit_code == 0
        assert (await muster_cli(env, "terms", "show", terms_id)).exit_code == 1
