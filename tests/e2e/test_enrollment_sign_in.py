"""End to end over real HTTP: a user signs in to the enrollment portal at the organisation's OpenID Connect
provider (a real one, simulated on localhost), downloads the enrollment profile, and their device enrolls."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from muster.services.enrollment_profiles import MOBILECONFIG_TYPE
from muster.simulators.apple_device import VirtualAppleDevice
from muster.simulators.oidc_provider import OidcUser
from muster.store.tables_sign_in import identity_provider_settings
from tests.e2e.sign_in_portal import CLIENT_SECRET, csrf_token, download_profile, portal, sign_in_with_idp
from tests.harness import DM

ADA = OidcUser(subject="ada-sub", preferred_username="ada@example.com", email="ada@example.com", name="Ada")


async def test_sign_in_download_and_enroll(tmp_path: Path, database_url: str) -> None:
    async with portal(tmp_path, database_url=database_url, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("Ada@Example.com")  # user principal names match whatever their case
        start = await browser.get("/enroll")
        assert "Sign in with your organisation account" in start.text

        page = await sign_in_with_idp(browser)
        assert page.status_code == 200 and "Enroll this iPhone/iPad/Mac" in page.text, page.text
        assert "Ada@Example.com" in page.text
        session_cookie = next(r for r in page.history if "muster_portal_session" in r.headers.get("set-cookie", ""))
        attributes = session_cookie.headers["set-cookie"].lower()
        assert "httponly" in attributes and "secure" in attributes and "samesite=lax" in attributes
        request = setup.idp.authorization_requests[-1]
        assert request["code_challenge_method"] == "S256" and request["state"] and request["nonce"]

        profile = await download_profile(browser, page)
        assert profile.status_code == 200 and profile.headers["content-type"] == MOBILECONFIG_TYPE

        installed = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile.content)
        async with httpx.AsyncClient(verify=installed.ssl_context()) as http:
            iphone = VirtualAppleDevice(http=http)
            await iphone.enroll(profile.content)
        async with setup.muster.admin() as admin:
            devices = (await admin.get(f"{DM}/managedDevices")).json()["value"]
        assert [d["userPrincipalName"] for d in devices] == ["Ada@Example.com"]

        signed_out = await browser.post("/enroll/sign-out", data={"csrf": csrf_token(page)})
        assert "Sign in with your organisation account" in signed_out.text
        assert (await browser.post("/enroll/profile", data={"csrf": csrf_token(page)})).status_code == 403


async def test_settings_keep_the_secret_and_check_input(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.muster.admin() as admin:
        settings = (await admin.get(f"{DM}/identityProviderSettings")).json()
        assert settings["isClientSecretSet"] is True and "clientSecret" not in settings
        assert CLIENT_SECRET not in str(settings)
        assert settings["redirectUri"] == f"{setup.muster.base_url}/enroll/oidc/callback"
        async with setup.muster.container.engine.connect() as conn:
            stored = (await conn.execute(select(identity_provider_settings))).one()
        assert CLIENT_SECRET.encode() not in stored.client_secret_encrypted
        for bad in (
            {"issuer": "http://idp.example.com"},
            {"scopes": ["profile"]},
            {"userPrincipalNameClaim": "has space"},
            {"issuer": ""},  # a client id without an issuer
            {"unknownProperty": 1},
        ):
            answer = await admin.patch(f"{DM}/identityProviderSettings", json=bad)
            assert answer.status_code == 400, (bad, answer.text)
        assert (await admin.get(f"{DM}/identityProviderSettings")).json() == settings  # nothing changed
