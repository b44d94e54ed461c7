"""Values PostgreSQL cannot store (NUL in text) are the request's fault: 400, and nothing is written."""

from __future__ import annotations

from pathlib import Path

from tests.harness import running_muster


async def test_nul_characters_are_refused_not_crashed_on(tmp_path: Path, database_url: str) -> None:
    postgres = database_url.startswith("postgresql")
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        action = await admin.post(
            "/graph/beta/deviceManagement/managedDevices/executeAction",
            json={"actionName": "syncDevice", "deviceIds": ["\u0000abc"]},
        )
        user = await admin.post(
            "/graph/beta/users",
            json={"userPrincipalName": "nul@example.com", "displayName": "a\u0000b", "accountEnabled": True},
        )
        if postgres:
            assert action.status_code == 400, action.text
            assert "NUL" in action.json()["error"]["message"]
            assert user.status_code == 400, user.text
            assert (
                await admin.get("/graph/beta/users", params={"$filter": "userPrincipalName eq 'nul@example.com'"})
            ).json()["value"] == []
        else:  # SQLite stores NUL: the id matches no device, and the name is kept as given
            assert action.status_code == 200 and action.json()["failedDeviceIds"] == ["\u0000abc"]
            assert user.status_code == 201, user.text
