"""`muster filters` drives the assignment filter API of a running server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_admin_cli import muster_cli
from tests.harness import DM, running_muster

RULE = '(device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")'


async def test_filters_cli(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        created = await muster_cli(env, "filters", "create", "iPads", "--platform", "iOS", "--rule", RULE)
        assert created.exit_code == 0, created.output
        filter_id = created.output.strip()
        assert (await admin.get(f"{DM}/assignmentFilters/{filter_id}")).json()["rule"] == RULE

        listed = await muster_cli(env, "filters", "list", "--json")
        assert [f["id"] for f in json.loads(listed.output)] == [filter_id]
        shown = await muster_cli(env, "filters", "show", filter_id)
        assert "iPads" in shown.output and "iOS" in shown.output

        updated = await muster_cli(env, "filters", "update", filter_id, "--rule", 'device.model -eq "iPad"')
        assert updated.exit_code == 0, updated.output
        assert (await admin.get(f"{DM}/assignmentFilters/{filter_id}")).json()["rule"] == 'device.model -eq "iPad"'
        nothing = await muster_cli(env, "filters", "update", filter_id)
        assert nothing.exit_code == 2

        matches = await muster_cli(env, "filters", "evaluate", filter_id, "-p", "model=iPad", "-p", "osVersion=17")
        assert matches.output.strip() == "matches"
        other = await muster_cli(env, "filters", "evaluate", filter_id, "-p", "model=iPhone")
        assert other.output.strip() == "does not match"

        valid = await muster_cli(env, "filters", "validate", RULE, "--platform", "iOS", "--usage", "enrollment")
        assert valid.exit_code == 0 and "valid" in valid.output
        invalid = await muster_cli(
            env, "filters", "validate", 'device.deviceName -eq "x"', "--platform", "iOS", "--usage", "enrollment"
        )
        assert invalid.exit_code == 1 and "cannot read device.deviceName" in invalid.output

        properties = await muster_cli(env, "filters", "properties", "windows10AndLater", "--usage", "enrollment")
        assert properties.exit_code == 0, properties.output
        assert "operatingSystemSKU" in properties.output and "deviceName" not in properties.output
        as_json = await muster_cli(env, "filters", "properties", "iOS", "--json")
        ownership = next(p for p in json.loads(as_json.output) if p["name"] == "deviceOwnership")
        assert ownership["supportedValues"] == ["Personal", "Corporate"]

        refused = await muster_cli(env, "filters", "create", "Bad", "--platform", "tvOS", "--rule", RULE)
        assert refused.exit_code == 1 and "platform must be one of" in refused.output

        deleted = await muster_cli(env, "filters", "delete", filter_id)
        assert deleted.exit_code == 0, deleted.output
        assert (await admin.get(f"{DM}/assignmentFilters/{filter_id}")).status_code == 404
