"""`muster webhooks` and `muster audit` drive a running server over the admin API."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from typer.testing import CliRunner, Result

from muster.cli.main import app
from tests.harness import running_muster


async def muster_cli(env: dict[str, str], *args: str) -> Result:
    # The CLI is a synchronous HTTP client: run it in a thread so the server in this event loop can answer.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_webhooks_and_audit_from_the_cli(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        created = await muster_cli(
            env, "webhooks", "create", "https://hooks.example.com/in", "-e", "deviceEnrolled", "-e", "commandCompleted"
        )
        assert created.exit_code == 0, created.output
        subscription_id = re.search(r"id:\s+(\S+)", created.output).group(1)  # type: ignore[union-attr]
        assert re.search(r"secret: whsec_\S+", created.output)

        listed = await muster_cli(env, "webhooks", "list", "--json")
        assert [s["events"] for s in json.loads(listed.output)] == [["deviceEnrolled", "commandCompleted"]]
        deliveries = await muster_cli(env, "webhooks", "deliveries", subscription_id, "--json")
        assert deliveries.exit_code == 0 and json.loads(deliveries.output) == []
        refused = await muster_cli(env, "webhooks", "create", "http://hooks.example.com/in", "-e", "deviceEnrolled")
        assert refused.exit_code == 1 and "must use https" in refused.output
        deleted = await muster_cli(env, "webhooks", "delete", subscription_id)
        assert deleted.exit_code == 0, deleted.output

        events = await muster_cli(env, "audit", "list", "--since", "1h", "--actor", "initial administrator", "--json")
        assert events.exit_code == 0, events.output
        assert [e["activity"] for e in json.loads(events.output)] == [
            "deleteWebhookSubscription",
            "createWebhookSubscription",
            "createWebhookSubscription",
        ]
        failed = await muster_cli(env, "audit", "list", "--failed", "--json")
        assert [e["activityResult"] for e in json.loads(failed.output)] == ["failure"]
        table = await muster_cli({**env, "COLUMNS": "250"}, "audit", "list", "--category", "webhookSubscriptions")
        assert table.exit_code == 0 and "deleteWebhookSubscription" in table.output
        assert (await muster_cli(env, "audit", "list", "--since", "yesterday")).exit_code == 2
        none = await muster_cli(env, "audit", "list", "--actor", "someone else", "--json")
        assert json.loads(none.output) == []
