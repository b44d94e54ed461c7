"""Who may not enroll: sign-ins without MFA when the organisation requires it, id_tokens that cannot be trusted,
users the directory does not know or has disabled (also after they signed in), and forged portal requests."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest

from muster.simulators.oidc_provider import OidcUser
from tests.e2e.sign_in_portal import csrf_token, download_profile, portal, sign_in_with_idp
from tests.harness import free_port

ADA = OidcUser(subject="ada-sub", preferred_username="ada@example.com")
SIGNED_IN = "Enroll this iPhone/iPad/Mac"


async def test_mfa_required_refuses_one_factor_and_steps_up(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        await setup.configure(requireMultiFactorAuthenticationForEnrollment=True)

        refused = await sign_in_with_idp(browser)  # the provider only ever asks for a password
        assert refused.status_code == 403 and "multifactor authentication" in refused.text
        assert SIGNED_IN not in refused.text
        first, second = setup.idp.authorization_requests[-2:]
        assert "prompt" not in first and second["prompt"] == "login"  # asked once more for a fresh sign-in
        assert ("signIn", "mfaRequired") in await setup.failures()

        # A provider that does MFA when asked (prompt=login): the step-up succeeds.
        setup.idp.user = OidcUser(subject="ada-sub", preferred_username="ada@example.com", step_up_amr=("pwd", "otp"))
        page = await sign_in_with_idp(browser)
        assert SIGNED_IN in page.text and "with multifactor authentication" in page.text
        assert (await download_profile(browser, page)).status_code == 200


async def test_mfa_grade_acr_is_requested_and_accepted(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        await setup.configure(
            requireMultiFactorAuthenticationForEnrollment=True,
            multiFactorAuthenticationAcrValues=["urn:example:loa:mfa"],
        )
        setup.idp.user = OidcUser(subject="ada-sub", preferred_username="ada@example.com", acr="urn:example:loa:mfa")
        page = await sign_in_with_idp(browser)
        assert SIGNED_IN in page.text, page.text
        assert setup.idp.authorization_requests[-1]["acr_values"] == "urn:example:loa:mfa"


@pytest.mark.parametrize(
    "spoil",
    [
        {"tamper_signature": True},
        {"id_token_overrides": {"nonce": "someone-elses-nonce"}},
        {"id_token_overrides": {"aud": "another-client"}},
        {"id_token_overrides": {"aud": ["muster-enrollment", "another-client"]}},  # several audiences, no azp
        {"id_token_overrides": {"exp": int(time.time()) - 3600}},
        {"id_token_overrides": {"iss": "https://impostor.example"}},
    ],
    ids=["signature", "nonce", "aud", "audiences", "expired", "issuer"],
)
async def test_untrustworthy_id_tokens_are_refused(tmp_path: Path, spoil: dict[str, object]) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        for knob, value in spoil.items():
            setattr(setup.idp, knob, value)
        refused = await sign_in_with_idp(browser)
        assert refused.status_code == 403 and "could not be trusted" in refused.text, refused.text
        assert "muster_portal_session" not in browser.cookies


async def test_rolled_provider_keys_are_fetched_again(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        assert SIGNED_IN in (await sign_in_with_idp(browser)).text
        setup.idp.rotate_key()
        browser.cookies.clear()
        assert SIGNED_IN in (await sign_in_with_idp(browser)).text


async def test_unknown_and_disabled_users_cannot_sign_in_nor_download(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        unknown = await sign_in_with_idp(browser)
        assert unknown.status_code == 403 and "not a user of this organisation" in unknown.text
        user_id = await setup.add_user("ada@example.com", enabled=False)
        disabled = await sign_in_with_idp(browser)
        assert disabled.status_code == 403 and "disabled" in disabled.text

        await setup.set_enabled(user_id, True)
        page = await sign_in_with_idp(browser)
        assert SIGNED_IN in page.text
        await setup.set_enabled(user_id, False)  # deprovisioned after signing in
        late = await download_profile(browser, page)
        assert late.status_code == 403 and "can no longer enroll" in late.text
        assert {("signIn", "userUnknown"), ("signIn", "userDisabled"), ("profileDownload", "userDisabled")} <= set(
            await setup.failures()
        )


async def test_identity_provider_errors_and_replayed_callbacks(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        setup.idp.authorization_error = "access_denied"
        denied = await sign_in_with_idp(browser)
        assert denied.status_code == 403 and "access_denied" in denied.text
        setup.idp.authorization_error = None
        forged = await browser.get("/enroll/oidc/callback", params={"code": "x", "state": "guessed"})
        assert forged.status_code == 400 and SIGNED_IN not in forged.text
        page = await sign_in_with_idp(browser)
        replay = await browser.get(str(page.history[1].headers["location"]))  # the same callback URL again
        assert replay.status_code == 400  # the pending sign-in was spent; the session still stands
        forged_post = await browser.post("/enroll/profile", data={"csrf": "not-the-token"})
        assert forged_post.status_code == 403
        assert (await download_profile(browser, page)).status_code == 200


async def test_local_account_with_totp(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser, setup.muster.admin() as admin:
        user_id = await setup.add_user("grace@example.com")
        password = {"newPassword": "correct horse battery"}
        assert (await admin.post(f"/graph/beta/users/{user_id}/setPassword", json=password)).status_code == 204
        await setup.configure(requireMultiFactorAuthenticationForEnrollment=True)
        form = {"username": "grace@example.com", "password": "correct horse battery"}
        start = await browser.get("/enroll")
        one_factor = await browser.post("/enroll/local", data=form | {"csrf": csrf_token(start)})
        assert one_factor.status_code == 403 and "multifactor authentication" in one_factor.text
        assert SIGNED_IN not in one_factor.text

        with_totp = password | {"requireTotp": True}
        assert (await admin.post(f"/graph/beta/users/{user_id}/setPassword", json=with_totp)).status_code == 204
        setup_page = await browser.post("/enroll/local", data=form | {"csrf": csrf_token(start)})
        uri = setup_page.text.split("<code>", 1)[1].split("</code>", 1)[0].replace("&amp;", "&")
        code = pyotp.parse_uri(uri).now()  # type: ignore[union-attr]
        page = await browser.post("/enroll/local", data=form | {"csrf": csrf_token(setup_page), "otp": code})
        assert SIGNED_IN in page.text and "with multifactor authentication" in page.text, page.text
        assert (await download_profile(browser, page)).status_code == 200

        no_csrf = await browser.post("/enroll/local", data=form)
        assert no_csrf.status_code == 403 and "expired" in no_csrf.text


async def test_an_unreachable_or_misconfigured_provider_is_explained(tmp_path: Path) -> None:
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        await setup.configure(clientSecret="not-the-secret")
        wrong_secret = await sign_in_with_idp(browser)
        assert wrong_secret.status_code == 502 and "could not complete the sign-in" in wrong_secret.text
        assert "not-the-secret" not in wrong_secret.text
        await setup.configure(issuer=f"http://127.0.0.1:{free_port()}")
        unreachable = await sign_in_with_idp(browser)
        assert unreachable.status_code == 502 and "cannot be reached" in unreachable.text
