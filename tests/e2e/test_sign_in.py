"""Interactive sign-in over HTTP: the device code grant (RFC 8628) approved on the `/device` page with a local
account, TOTP enrollment and replay refusal, lockout, disabled accounts, and CSRF refusal."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from muster.domain.errors import NotAllowed
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import RunningMuster, running_muster, table_rows
from tests.web.test_oauth import claims_of

DEVICE_CODE = "/oauth2/v2.0/devicecode"
TOKEN = "/oauth2/v2.0/token"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD = "correct horse battery"


async def new_user(muster: RunningMuster, upn: str, *, require_totp: bool = False) -> str:
    async with muster.admin() as admin:
        created = await admin.post("/graph/beta/users", json={"userPrincipalName": upn, "displayName": "Ada Admin"})
        assert created.status_code == 201, created.text
        user_id: str = created.json()["id"]
        answer = await admin.post(
            f"/graph/beta/users/{user_id}/setPassword", json={"newPassword": PASSWORD, "requireTotp": require_totp}
        )
        assert answer.status_code == 204, answer.text
    return user_id


class Browser:
    """A user at the `/device` page: loads the form (and its CSRF cookie), then submits it."""

    def __init__(self, muster: RunningMuster, http: httpx.AsyncClient) -> None:
        self.muster = muster
        self.http = http

    async def submit(self, user_code: str, **fields: str) -> httpx.Response:
        page = await self.http.get(self.muster.base_url + "/device", params={"user_code": user_code})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None and page.headers["x-frame-options"] == "DENY"
        form = {"csrf": csrf.group(1), "user_code": user_code, "action": "approve", **fields}
        return await self.http.post(self.muster.base_url + "/device", data=form)


async def start(http: httpx.AsyncClient, muster: RunningMuster) -> dict[str, Any]:
    answer = await http.post(muster.base_url + DEVICE_CODE, data={"client_id": "muster-cli", "scope": "openid"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def poll(http: httpx.AsyncClient, muster: RunningMuster, device_code: str) -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "muster-cli"}
    return await http.post(muster.base_url + TOKEN, data=data)


async def test_device_code_login_with_a_password(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster:
        user_id = await new_user(muster, "ada@example.com")
        async with muster.device_client() as http:
            grant = await start(http, muster)
            assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", grant["user_code"])
            assert grant["verification_uri"] == muster.base_url + "/device"
            assert grant["verification_uri_complete"].endswith(f"?user_code={grant['user_code']}")
            assert (grant["expires_in"], grant["interval"]) == (900, 5)
            pending = await poll(http, muster, grant["device_code"])
            assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")
            too_fast = await poll(http, muster, grant["device_code"])
            assert too_fast.json()["error"] == "slow_down"

            browser = Browser(muster, http)
            wrong = await browser.submit(grant["user_code"], username="ada@example.com", password="nope nope nope")
            unknown = await browser.submit(grant["user_code"], username="bob@example.com", password="nope nope nope")
            assert wrong.status_code == unknown.status_code == 400
            message = "the user name or password is not right"
            assert message in wrong.text and message in unknown.text
            approved = await browser.submit(
                grant["user_code"].lower().replace("-", ""), username="ADA@example.com", password=PASSWORD
            )
            assert approved.status_code == 200 and "Signed in as Ada Admin" in approved.text, approved.text

            issued = await poll(http, muster, grant["device_code"])
            assert issued.status_code == 200, issued.text
            claims = claims_of(issued.json()["access_token"])[1]
            assert (claims["idtyp"], claims["sub"], claims["amr"], claims["azp"]) == (
                "user",
                user_id,
                ["pwd"],
                "muster-cli",
            )
            again = await poll(http, muster, grant["device_code"])
            assert again.json()["error"] == "invalid_grant"  # single use
            reused = await browser.submit(grant["user_code"], username="ada@example.com", password=PASSWORD)
            assert reused.status_code == 400 and "not valid or has expired" in reused.text

            subject = await muster.container.access_tokens.verify(issued.json()["access_token"])
            assert subject is not None and subject.subject_id == user_id
            async with muster.admin() as admin:
                disabled = await admin.patch(f"/graph/beta/users/{user_id}", json={"accountEnabled": False})
                assert disabled.status_code == 204, disabled.text
            assert await muster.container.access_tokens.verify(issued.json()["access_token"]) is None

            denied_grant = await start(http, muster)
            refused = await browser.submit(denied_grant["user_code"], username="ada@example.com", password=PASSWORD)
            assert "account disabled" in refused.text
            await browser.submit(denied_grant["user_code"], action="deny")
            denied = await poll(http, muster, denied_grant["device_code"])
            assert denied.json()["error"] == "access_denied"

            others = [
                await http.post(muster.base_url + DEVICE_CODE, data={"client_id": "someone-else"}),
                await poll(http, muster, "made-up"),
            ]
            assert [(a.status_code, a.json()["error"]) for a in others] == [
                (401, "invalid_client"),
                (400, "invalid_grant"),
            ]


async def test_totp_enrollment_replay_and_lockout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_muster(tmp_path) as muster:
        user_id = await new_user(muster, "grace@example.com", require_totp=True)
        async with muster.admin() as admin:
            short = await admin.post(f"/graph/beta/users/{user_id}/setPassword", json={"newPassword": "short"})
            assert short.status_code == 400 and "10 to 256 characters" in short.json()["error"]["message"]
            unknown = await admin.post("/graph/beta/users/nobody/setPassword", json={"newPassword": PASSWORD})
            assert unknown.status_code == 404
        async with muster.device_client() as http:
            browser = Browser(muster, http)
            grant = await start(http, muster)
            enroll = await browser.submit(grant["user_code"], username="grace@example.com", password=PASSWORD)
            assert enroll.status_code == 401
            uri = re.search(r"<code>(otpauth://[^<]+)</code>", enroll.text)
            assert uri is not None
            totp = pyotp.parse_uri(uri.group(1).replace("&amp;", "&"))
            assert isinstance(totp, pyotp.TOTP)
            code = totp.now()
            confirmed = await browser.submit(
                grant["user_code"], username="grace@example.com", password=PASSWORD, otp=code
            )
            assert confirmed.status_code == 200, confirmed.text
            token = (await poll(http, muster, grant["device_code"])).json()["access_token"]
            assert claims_of(token)[1]["amr"] == ["pwd", "otp", "mfa"]

            second = await start(http, muster)
            asked = await browser.submit(second["user_code"], username="grace@example.com", password=PASSWORD)
            assert asked.status_code == 401 and "authenticator app" in asked.text and "otpauth" not in asked.text
            replay = await browser.submit(
                second["user_code"], username="grace@example.com", password=PASSWORD, otp=code
            )
            assert "already used" in replay.text

            for _ in range(5):
                await browser.submit(second["user_code"], username="grace@example.com", password="wrong password!")
            locked = await browser.submit(
                second["user_code"], username="grace@example.com", password=PASSWORD, otp=totp.now()
            )
            assert "locked" in locked.text

        credentials = (await table_rows(muster.container.engine))["user_credentials"]
        assert credentials[0]["password_hash"].startswith("$argon2id$")
        await muster.container.engine.dispose()
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("muster.db*"))
    assert totp.secret.encode() not in stored and PASSWORD.encode() not in stored
    assert totp.secret not in caplog.text and PASSWORD not in caplog.text
    assert grant["device_code"] not in caplog.text
    assert b"grace@example.com" in stored


async def test_device_page_refuses_cross_site_posts(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.device_client() as http:
        grant = await start(http, muster)
        forged = await http.post(
            muster.base_url + "/device", data={"csrf": "guess", "user_code": grant["user_code"], "action": "deny"}
        )
        assert forged.status_code == 403
        assert (await poll(http, muster, grant["device_code"])).json()["error"] == "authorization_pending"


async def test_parallel_guesses_all_count_towards_lockout(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster:
        await new_user(muster, "linus@example.com")
        accounts = muster.container.local_accounts

        async def guess(password: str) -> str:
            try:
                await accounts.sign_in(
                    org_id=DEFAULT_ORG_ID, user_principal_name="linus@example.com", password=password, otp=None
                )
            except NotAllowed as refused:
                return refused.message
            return "signed in"

        answers = await asyncio.gather(*(guess(f"guess number {n}") for n in range(5)))
        assert set(answers) == {"the user name or password is not right"}
        assert "locked" in await guess(PASSWORD)
