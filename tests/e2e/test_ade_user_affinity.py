"""ADE with user affinity, end to end: Setup Assistant with modern authentication (the enrollment portal in a web
view at `configuration_web_url`, apple-protocols.md §7.6) and legacy authentication (Apple's basic HTTP
authentication at the DEP profile's `url`, 003:960), both binding the enrollment to the user (003:4850-4859)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from muster.pki.certs import certificate_pem, generate_rsa_key, self_signed_certificate
from muster.protocols.apple.machine_info import MachineInfo, encode_machine_info
from muster.protocols.errors import ParseError
from muster.services.ade_enrollment import BasicCredentials
from muster.simulators.abm import FakeAbm, serve_fake_abm
from muster.simulators.abm_fleet import ServerHandle
from muster.simulators.apple_device import DeviceProtocolError, VirtualAppleDevice
from muster.simulators.apple_identity import simulated_device_ca
from muster.simulators.oidc_provider import OidcProvider, OidcUser, serve_oidc_provider
from muster.store.tables import enrollment_requests
from muster.web.device import basic_credentials
from tests.e2e.sign_in_portal import CLIENT_ID, CLIENT_SECRET, Portal, csrf_token
from tests.e2e.test_ade import TOKENS, link_token
from tests.harness import DM, fake_apple, running_muster

ADA = OidcUser(subject="ada-sub", preferred_username="ada@example.com", name="Ada Lovelace")
PASSWORD = "correct horse battery"
CONTINUE = "Continue setting up this device"


@asynccontextmanager
async def ade_portal(
    tmp_path: Path, database_url: str | None, profile: dict[str, Any]
) -> AsyncIterator[tuple[Portal, ServerHandle, list[str]]]:
    """Muster with a synced ADE token whose iPhones have `profile` assigned, and an identity provider."""
    abm = FakeAbm(org_name="Example Corp")
    device_ca = tmp_path / "apple-device-ca.pem"
    device_ca.write_bytes(certificate_pem(simulated_device_ca().certificate))
    async with (
        fake_apple(tmp_path / "apple") as apple,
        serve_fake_abm(abm) as abm_url,
        running_muster(
            tmp_path / "m", database_url=database_url, apple=apple, dep_url=abm_url, apple_device_ca_file=device_ca
        ) as muster,
    ):
        await muster.install_push_certificate(apple)
        redirect = f"{muster.base_url}/enroll/oidc/callback"
        idp = OidcProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=(redirect,), user=ADA)
        async with serve_oidc_provider(idp) as issuer, muster.admin() as admin:
            setup = Portal(muster, idp, apple)
            await setup.configure(issuer=issuer, clientId=CLIENT_ID, clientSecret=CLIENT_SECRET)
            token_id, server = await link_token(muster, abm, admin)
            serials = abm.seed_devices(server, 3, families=("iPhone",))
            uploaded = await admin.post(
                f"{TOKENS}/{token_id}/uploadDepToken",
                json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
            )
            assert uploaded.status_code == 200, uploaded.text
            await muster.container.ade_sync.wait_idle()
            body = {"@odata.type": "#microsoft.graph.depIOSEnrollmentProfile", "displayName": "Users"} | profile
            created = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles", json=body)
            assert created.status_code == 201, created.text
            profile_id = created.json()["id"]
            assigned = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile_id}/setDefaultProfile")
            assert assigned.status_code == 204
            abm_profile = server.profiles[created.json()["abmProfileUuid"]]
            assert abm_profile.url == muster.container.endpoints.ade_enrollment_url
            yield setup, server, serials


async def managed_device(setup: Portal, serial: str) -> dict[str, Any]:
    async with setup.muster.admin() as admin:
        found = await admin.get(f"{DM}/managedDevices", params={"$filter": f"serialNumber eq '{serial}'"})
    devices: list[dict[str, Any]] = found.json()["value"]
    assert len(devices) == 1, devices
    return devices[0]


async def issued_profiles(setup: Portal) -> int:
    async with setup.muster.container.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(enrollment_requests))).scalar_one())


async def with_identity_provider(web: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """The user taps "Sign in with your organisation account", signs in, then continues the setup."""
    assert "Sign in with your organisation account" in page.text
    home = await web.get(str(page.url.join("/enroll/oidc/start")), follow_redirects=True)
    assert CONTINUE in home.text, home.text
    return await web.post(str(home.url.join("/enroll/profile")), data={"csrf": csrf_token(home)})


async def test_modern_authentication_with_the_identity_provider(tmp_path: Path, database_url: str) -> None:
    modern = {"requiresUserAuthentication": True, "configurationWebUrl": True}
    async with ade_portal(tmp_path, database_url, modern) as (setup, server, serials), setup.browser() as http:
        web_url = f"{setup.muster.base_url}/enroll/ade"
        assert {p.configuration_web_url for p in server.profiles.values()} == {web_url}
        await setup.add_user("ada@example.com")

        device = VirtualAppleDevice(http=http, serial_number=serials[0])
        await device.ade_web_enroll(web_url, with_identity_provider)
        assert device.enrolled
        managed = await managed_device(setup, serials[0])
        assert managed["userPrincipalName"] == "ada@example.com"
        assert managed["deviceEnrollmentType"] == "appleBulkWithUser"

        # An older device falls back to legacy authentication at `url` (003:4859); Ada has no local password.
        legacy = await http.post(setup.muster.container.endpoints.ade_enrollment_url, content=b"")
        assert legacy.status_code == 400
        fallback = VirtualAppleDevice(http=http, serial_number=serials[1])
        with pytest.raises(DeviceProtocolError, match="identity provider"):
            await fallback.ade_enroll(
                setup.muster.container.endpoints.ade_enrollment_url, credentials=("ada@example.com", "guess")
            )
        assert ("adeProfileRequest", "identityProviderAccount") in await setup.failures()


async def test_the_web_view_needs_a_genuine_assigned_device(tmp_path: Path, database_url: str) -> None:
    modern = {"requiresUserAuthentication": True, "configurationWebUrl": True}
    async with ade_portal(tmp_path, database_url, modern) as (setup, _, serials), setup.browser() as http:
        web_url = f"{setup.muster.base_url}/enroll/ade"
        before = await issued_profiles(setup)
        missing = await http.get(web_url)
        assert missing.status_code == 400 and "Setup Assistant" in missing.text
        garbage = await http.get(web_url, headers={"x-apple-aspen-deviceinfo": "not base64!"})
        assert garbage.status_code == 400
        key = generate_rsa_key()
        forged = encode_machine_info(
            MachineInfo(udid="FORGED", serial=serials[0], product="iPhone15,2", version="21F79"),
            certificate=self_signed_certificate(key, "not an Apple device"),
            key=key,
        )
        refused = await http.get(web_url, headers={"x-apple-aspen-deviceinfo": base64.b64encode(forged).decode()})
        assert refused.status_code == 403 and "Apple device identity" in refused.text
        stranger = VirtualAppleDevice(http=http)  # genuine, but not assigned to this MDM server
        with pytest.raises(DeviceProtocolError, match="403"):
            await stranger.ade_web_enroll(web_url, with_identity_provider)
        assert await issued_profiles(setup) == before

        # The device rides in the signed session: a tampered device cookie is ignored, so the session signed in
        # with it gets no Setup Assistant profile for any device.
        await setup.add_user("ada@example.com")
        device = VirtualAppleDevice(http=http, serial_number=serials[0])
        page = await http.get(web_url, headers={"x-apple-aspen-deviceinfo": _device_info(device)})
        assert page.status_code == 200
        (cookie,) = [c for c in http.cookies.jar if c.name == "muster_portal_ade"]
        assert cookie.value is not None
        body, mac = cookie.value.split(".")
        cookie.value = f"{body[:-2]}AA.{mac}"  # another serial would change the body the same way
        home = await http.get(str(page.url.join("/enroll/oidc/start")), follow_redirects=True)
        assert "Signed in as" in home.text and CONTINUE not in home.text


def _device_info(device: VirtualAppleDevice) -> str:
    return base64.b64encode(device.signed_machine_info()).decode()


async def test_modern_authentication_with_a_local_account_and_mfa(tmp_path: Path) -> None:
    modern = {"requiresUserAuthentication": True, "configurationWebUrl": True}
    async with ade_portal(tmp_path, None, modern) as (setup, _, serials), setup.browser() as http:
        web_url = f"{setup.muster.base_url}/enroll/ade"
        user_id = await setup.add_user("grace@example.com")
        async with setup.muster.admin() as admin:
            password = {"newPassword": PASSWORD}
            assert (await admin.post(f"/graph/beta/users/{user_id}/setPassword", json=password)).status_code == 204
        await setup.configure(requireMultiFactorAuthenticationForEnrollment=True)
        form = {"username": "grace@example.com", "password": PASSWORD}

        async def one_factor(web: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
            return await web.post(str(page.url.join("/enroll/local")), data=form | {"csrf": csrf_token(page)})

        device = VirtualAppleDevice(http=http, serial_number=serials[0])
        with pytest.raises(DeviceProtocolError, match="HTTP 403"):
            await device.ade_web_enroll(web_url, one_factor)
        assert ("signIn", "mfaRequired") in await setup.failures()

        async with setup.muster.admin() as admin:
            with_totp = {"newPassword": PASSWORD, "requireTotp": True}
            assert (await admin.post(f"/graph/beta/users/{user_id}/setPassword", json=with_totp)).status_code == 204

        async def with_authenticator(web: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
            enroll_app = await one_factor(web, page)
            uri = enroll_app.text.split("<code>", 1)[1].split("</code>", 1)[0].replace("&amp;", "&")
            code = pyotp.parse_uri(uri).now()  # type: ignore[union-attr]
            local = str(page.url.join("/enroll/local"))
            home = await web.post(local, data=form | {"csrf": csrf_token(enroll_app), "otp": code})
            assert CONTINUE in home.text and "with multifactor authentication" in home.text, home.text
            return await web.post(str(home.url.join("/enroll/profile")), data={"csrf": csrf_token(home)})

        await device.ade_web_enroll(web_url, with_authenticator)
        managed = await managed_device(setup, serials[0])
        assert managed["userPrincipalName"] == "grace@example.com"
        assert managed["deviceEnrollmentType"] == "appleBulkWithUser"


async def test_legacy_setup_assistant_authentication(tmp_path: Path, database_url: str) -> None:
    async with (
        ade_portal(tmp_path, database_url, {"requiresUserAuthentication": True}) as (setup, server, serials),
        setup.browser() as http,
        setup.muster.admin() as admin,
    ):
        assert all(p.configuration_web_url is None for p in server.profiles.values())
        url = setup.muster.container.endpoints.ade_enrollment_url
        grace = await setup.add_user("grace@example.com")
        assert (await admin.post(f"/graph/beta/users/{grace}/setPassword", json={"newPassword": PASSWORD})).is_success
        before = await issued_profiles(setup)
        device = VirtualAppleDevice(http=http, serial_number=serials[0])

        challenge = await http.post(url, content=device.signed_machine_info())
        assert challenge.status_code == 401
        assert challenge.headers["www-authenticate"].startswith('Basic realm="')
        with pytest.raises(DeviceProtocolError, match="401"):
            await device.ade_enroll(url, credentials=("grace@example.com", "not the password"))
        garbled = await http.post(url, content=device.signed_machine_info(), headers={"Authorization": "Basic %%%"})
        assert garbled.status_code == 400
        assert ("adeProfileRequest", "invalidCredentials") in await setup.failures()
        assert await issued_profiles(setup) == before

        await device.ade_enroll(url, credentials=("grace@example.com", PASSWORD))
        managed = await managed_device(setup, serials[0])
        assert managed["userPrincipalName"] == "grace@example.com"
        assert managed["deviceEnrollmentType"] == "appleBulkWithUser"

        await setup.set_enabled(grace, False)
        disabled = VirtualAppleDevice(http=http, serial_number=serials[1])
        with pytest.raises(DeviceProtocolError, match=r"401.*disabled"):
            await disabled.ade_enroll(url, credentials=("grace@example.com", PASSWORD))
        await setup.set_enabled(grace, True)

        # Legacy authentication cannot ask for a second factor (003:4854).
        with_totp = {"newPassword": PASSWORD, "requireTotp": True}
        assert (await admin.post(f"/graph/beta/users/{grace}/setPassword", json=with_totp)).status_code == 204
        with pytest.raises(DeviceProtocolError, match=r"403.*authenticator app"):
            await disabled.ade_enroll(url, credentials=("grace@example.com", PASSWORD))
        await setup.configure(requireMultiFactorAuthenticationForEnrollment=True)
        mfa_org = await http.post(url, content=disabled.signed_machine_info())
        assert mfa_org.status_code == 403 and "multifactor" in mfa_org.text
        failures = await setup.failures()
        assert ("adeProfileRequest", "secondFactorUnavailable") in failures
        assert ("adeProfileRequest", "mfaRequired") in failures
        assert not disabled.enrolled


@given(user=st.text(min_size=1, max_size=320).filter(lambda u: ":" not in u), password=st.text(max_size=256))
def test_basic_credentials_round_trip(user: str, password: str) -> None:
    """RFC 7617: the user name ends at the first colon; the password may hold colons and any UTF-8."""
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert basic_credentials(f"Basic {encoded}") == BasicCredentials(user_principal_name=user, password=password)


@given(header=st.text(max_size=3000))
def test_garbage_authorization_is_a_parse_error(header: str) -> None:
    try:
        credentials = basic_credentials(header)
    except ParseError:
        return
    assert credentials is not None and credentials.user_principal_name
