"""The `muster` CLI covers the admin resources: round trips, `--json`, `muster api`, secrets and errors."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

from muster.domain.rbac import Permission
from muster.simulators.abm import FakeAbm, serve_fake_abm
from tests.cli.test_admin_cli import muster_cli
from tests.harness import RunningMuster, running_muster


def _env(muster: RunningMuster) -> dict[str, str]:
    return {
        "MUSTER_URL": muster.base_url,
        "MUSTER_TOKEN": muster.admin_token,
        "MUSTER_CA_FILE": str(muster.tls_ca_file),
    }


async def _ok(env: dict[str, str], *args: str) -> str:
    result = await muster_cli(env, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


async def _json(env: dict[str, str], *args: str) -> Any:
    return json.loads(await _ok(env, *args, "--json"))


async def test_directory_round_trips_and_errors(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        env = _env(muster)
        user_id = (await _ok(env, "users", "create", "ada@example.com", "--department", "Research")).strip()
        assert [u["id"] for u in await _json(env, "users", "list")] == [user_id]
        await _ok(env, "users", "update", "ada@example.com", "--department", "Navy", "--display-name", "Ada L.")
        shown = await _json(env, "users", "show", user_id)
        assert (shown["department"], shown["displayName"]) == ("Navy", "Ada L.")
        table = await _ok({**env, "COLUMNS": "200"}, "users", "show", user_id)
        assert re.search(r"department\s*│\s*Navy", table)

        password_file = tmp_path / "password"
        password_file.write_text("correct horse battery staple\n")
        said = await _ok(env, "users", "set-password", user_id, "--password-file", str(password_file))
        assert "correct horse" not in said
        too_short = tmp_path / "short"
        too_short.write_text("abc")
        refused = await muster_cli(env, "users", "set-password", user_id, "--password-file", str(too_short))
        assert refused.exit_code == 1 and "400: the password must have" in refused.output

        group_id = (await _ok(env, "groups", "create", "Researchers")).strip()
        await _ok(env, "groups", "members", "add", group_id, user_id)
        assert [m["id"] for m in await _json(env, "groups", "members", "list", group_id)] == [user_id]
        await _ok(env, "groups", "update", group_id, "--rule", 'user.department -eq "Research"', "--name", "R&D")
        dynamic = await _json(env, "groups", "show", group_id)
        assert dynamic["displayName"] == "R&D" and dynamic["members"] == []  # Ada moved to the Navy
        await _ok(env, "groups", "update", group_id, "--assigned")
        assert (await _json(env, "groups", "show", group_id))["groupTypes"] == []
        await _ok(env, "groups", "delete", group_id)
        assert await _json(env, "groups", "list") == []

        secret_file = tmp_path / "scim-secret"
        created = await _ok(env, "provisioning-tokens", "create", "Entra ID", "-o", str(secret_file))
        assert secret_file.read_text().strip() not in created and "/scim/v2" in created
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        [token] = await _json(env, "provisioning-tokens", "list")
        assert token["displayName"] == "Entra ID" and "secretText" not in token
        await _ok(env, "provisioning-tokens", "revoke", token["id"])
        assert await _json(env, "provisioning-tokens", "list") == []

        await _ok(env, "users", "delete", "ada@example.com")
        missing = await muster_cli(env, "users", "show", "ada@example.com")
        assert missing.exit_code == 1 and "404: user ada@example.com not found" in missing.output
        nothing = await muster_cli(env, "users", "update", user_id)
        assert nothing.exit_code == 2 and "Nothing to change" in nothing.output


async def test_access_webhooks_and_raw_api(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "m") as muster:
        env = _env(muster)
        tag_id = (await _ok(env, "roles", "tags", "create", "Paris")).strip()
        await _ok(env, "roles", "tags", "update", tag_id, "--name", "Lyon", "--description", "Lyon office")
        assert (await _json(env, "roles", "tags", "show", tag_id))["displayName"] == "Lyon"

        role_id = (await _ok(env, "roles", "create", "Reader", "-p", Permission.MANAGED_DEVICES_READ.value)).strip()
        await _ok(env, "roles", "update", role_id, "--name", "Device reader")
        assignment_id = (await _ok(env, "roles", "assign", role_id, "-m", "group-1", "-t", tag_id)).strip()
        await _ok(env, "roles", "assignments", "update", assignment_id, "--all-tags", "-m", "group-2")
        assignment = await _json(env, "roles", "assignments", "show", assignment_id)
        assert assignment["members"] == ["group-2"] and assignment["allScopeTags"] is True
        listed = await _json(env, "roles", "assignments")
        assert assignment_id in [a["id"] for a in listed]
        await _ok(env, "roles", "assignments", "delete", assignment_id)
        await _ok(env, "roles", "delete", role_id)
        await _ok(env, "roles", "tags", "delete", tag_id)
        assert "Device reader" not in [r["displayName"] for r in await _json(env, "roles", "list")]

        app = json.loads(await _ok(env, "apps", "create", "exporter", "--json"))
        added = await _ok(env, "apps", "add-password", app["id"])
        assert "shown only this once" in added
        [credential] = (await _json(env, "apps", "show", app["id"]))["passwordCredentials"]
        assert credential["secretText"] is None
        await _ok(env, "apps", "remove-password", app["id"], credential["keyId"])
        assert (await _json(env, "apps", "show", app["id"]))["passwordCredentials"] == []
        await _ok(env, "apps", "delete", app["id"])

        created = await _ok(env, "webhooks", "create", "https://hooks.example.com/in", "-e", "deviceEnrolled")
        subscription_id = re.search(r"id:\s+(\S+)", created).group(1)  # type: ignore[union-attr]
        first_secret = re.search(r"secret: (\S+)", created).group(1)  # type: ignore[union-attr]
        await _ok(env, "webhooks", "update", subscription_id, "-e", "commandCompleted", "--description", "SIEM")
        shown = await _json(env, "webhooks", "show", subscription_id)
        assert (shown["events"], shown["description"]) == (["commandCompleted"], "SIEM") and "secret" not in shown
        rotated = await _ok(env, "webhooks", "rotate-secret", subscription_id)
        assert re.search(r"secret: whsec_\S+", rotated) and first_secret not in rotated
        await _ok(env, "webhooks", "delete", subscription_id)

        [latest] = json.loads(await _ok(env, "audit", "list", "--top", "1", "--json"))
        assert (await _json(env, "audit", "show", latest["id"]))["activity"] == latest["activity"]
        assert (await _json(env, "push-certificate", "show"))["certificateUploadStatus"] == "notUploaded"
        assert (await _json(env, "consents", "show", "appleEnrollmentProgram"))["granted"] is False
        await _ok(env, "consents", "grant", "appleEnrollmentProgram")
        assert (await _json(env, "consents", "show", "appleEnrollmentProgram"))["granted"] is True
        mfa = await _json(env, "identity-provider", "set", "--require-mfa")
        assert mfa["requireMultiFactorAuthenticationForEnrollment"] is True and mfa["issuer"] is None

        body = tmp_path / "tag.json"
        body.write_text(json.dumps({"displayName": "Berlin"}))
        made = json.loads(await _ok(env, "api", "post", "/graph/beta/deviceManagement/roleScopeTags", "-d", f"@{body}"))
        page = json.loads(
            await _ok(
                env, "api", "GET", "/graph/beta/deviceManagement/roleScopeTags", "-p", "$filter=displayName eq 'Berlin'"
            )
        )
        assert [t["id"] for t in page["value"]] == [made["id"]]
        assert await _ok(env, "api", "DELETE", f"/graph/beta/deviceManagement/roleScopeTags/{made['id']}") == ""
        bad = await muster_cli(env, "api", "GET", "/graph/beta/deviceManagement/roleScopeTags/nope")
        assert bad.exit_code == 1 and bad.output.startswith("404: ")
        elsewhere = await muster_cli(env, "api", "GET", "//attacker.example/graph/beta/users")
        assert elsewhere.exit_code == 2

        for garbage in (("-d", "{not json"), ("-p", "no-equals-sign"), ("-d", f"@{tmp_path / 'missing.json'}")):
            refused = await muster_cli(env, "api", "POST", "/graph/beta/groups", *garbage)
            assert refused.exit_code == 2 and "Traceback" not in refused.output

        ids = tmp_path / "ids.txt"
        ids.write_text("d-2\n\nd-3\nd-1\n")
        batched = await _ok(env, "devices", "action", "syncDevice", "d-1", "--ids-file", str(ids), "--batch-size", "2")
        assert "queued for 0 device(s)" in batched and batched.count("device not found") == 3


async def test_ade_tokens_profiles_and_sync_with_wait(tmp_path: Path) -> None:
    abm = FakeAbm(org_name="Example Corp")
    async with serve_fake_abm(abm) as abm_url, running_muster(tmp_path / "m", dep_url=abm_url) as muster:
        env = _env(muster)
        key_file = tmp_path / "dep.pem"
        created = await _ok(env, "ade", "create", "--agree", "--name", "Main", "-o", str(key_file))
        token_id = created.split()[1].rstrip(":")
        server = abm.add_server("Muster MDM", key_file.read_bytes())
        serials = abm.seed_devices(server, 3, families=("iPhone",))
        token_file = tmp_path / "server_token.p7m"
        token_file.write_bytes(server.download_token())
        await _ok(env, "ade", "upload", token_id, str(token_file), "--apple-id", "it@example.com")
        await muster.container.ade_sync.wait_idle()

        synced = await _ok(env, "ade", "sync", token_id, "--wait", "--interval", "0.1")
        assert "sync finished at" in synced and "3 device(s)" in synced
        too_soon = await muster_cli(env, "ade", "sync", token_id)
        assert too_soon.exit_code == 1 and "at most once every 15 minutes" in too_soon.output

        tag_id = (await _ok(env, "roles", "tags", "create", "Stores")).strip()
        await _ok(env, "ade", "update", token_id, "--scope-tag", tag_id)
        token = await _json(env, "ade", "show", token_id)
        assert token["roleScopeTagIds"] == [tag_id] and token["syncedDeviceCount"] == 3
        assert [t["id"] for t in await _json(env, "ade", "list")] == [token_id]

        profile = await _json(
            env, "ade", "profiles", "create", token_id, "--name", "Kiosk", "--set", "isMandatory=true"
        )
        profile_id = profile["id"]
        await _ok(env, "ade", "profiles", "update", token_id, profile_id, "--set", "description=Front desk")
        shown = await _json(env, "ade", "profiles", "show", token_id, profile_id)
        assert (shown["displayName"], shown["description"], shown["isMandatory"]) == ("Kiosk", "Front desk", True)
        assert [p["platform"] for p in await _json(env, "ade", "profiles", "list", token_id)] == ["ios"]
        assigned = await _ok(env, "ade", "profiles", "assign", token_id, profile_id, serials[0])
        assert "assigned 1 device(s)" in assigned
        in_use = await muster_cli(env, "ade", "profiles", "delete", token_id, profile_id)
        assert in_use.exit_code == 1 and "Devices are assigned to this profile" in in_use.output

        imported = await _json(env, "ade", "imported-devices", "list", token_id)
        assert sorted(d["serialNumber"] for d in imported) == sorted(serials)
        unassigned = next(d for d in imported if d["serialNumber"] == serials[1])
        await _ok(env, "ade", "imported-devices", "delete", token_id, unassigned["id"])
        left = await _json(env, "ade", "imported-devices", "list", token_id)
        assert serials[1] not in [d["serialNumber"] for d in left]
