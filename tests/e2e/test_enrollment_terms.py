"""End to end over real HTTP: the enrollment portal asks a signed-in user to accept the terms and conditions
assigned to them before it hands out an enrollment profile (seed-catalog-A §2.8 TC-01, TC-03, TC-05, TC-10), and
to choose a category for their devices (§2.7 CAT-09..11).

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select, update

from muster.services.enrollment_profiles import MOBILECONFIG_TYPE
from muster.simulators.oidc_provider import OidcUser
from muster.store.tables import devices
from muster.store.tables_terms import terms_declines
from tests.e2e.sign_in_portal import csrf_token, download_profile, portal, sign_in_with_idp
from tests.harness import DM
from tests.web.test_admin_access import add_device

ADA = OidcUser(subject="ada-sub", preferred_username="ada@example.com", email="ada@example.com", name="Ada")
SIGNED_IN = "Enroll this iPhone/iPad/Mac"
TERMS = f"{DM}/termsAndConditions"
POLICY = {
    "displayName": "Corporate T&C (admin name)",
    "description": "Only admins read this description",
    "title": "Contoso device terms",
    "acceptanceStatement": "Contoso may wipe corporate data from this device.",
    "bodyText": "1. The device stays managed.\n2. <b>Markup</b> is shown as text.",
}


def _field(page_text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page_text)
    assert found, page_text
    return found.group(1)


async def test_terms_are_accepted_before_the_profile_tc_01_003_1207_tc_03_003_1237(tmp_path: Path) -> None:
    """TC-01 (003:342, 1207): accept before enrolling; TC-03 (003:1218, 1237-1255): title in bold, summary,
    "Read terms", Decline / Accept, never the name or description; TC-10 (003:1187-1189): a decline is recorded;
    TC-05 (003:1249-1251): a new version is asked again."""
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        async with setup.muster.admin() as admin:
            terms = (await admin.post(TERMS, json=POLICY)).json()
            everyone = {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}
            assigned = await admin.post(
                f"{TERMS}/{terms['id']}/assign", json={"termsAndConditionsAssignments": [{"target": everyone}]}
            )
            assert assigned.status_code == 200, assigned.text

        page = await sign_in_with_idp(browser)
        assert page.status_code == 200 and SIGNED_IN not in page.text
        assert "<strong>Contoso device terms</strong>" in page.text
        assert "Contoso may wipe corporate data from this device." in page.text
        assert "<details><summary>Read terms</summary>" in page.text
        assert "&lt;b&gt;Markup&lt;/b&gt; is shown as text." in page.text
        assert 'value="decline">Decline</button>' in page.text and 'value="accept">Accept</button>' in page.text
        assert POLICY["displayName"] not in page.text and POLICY["description"] not in page.text
        assert "<script" not in page.text

        refused = await download_profile(browser, page)  # the gate holds without the terms page
        assert refused.status_code == 403 and "Accept the terms and conditions" in refused.text

        answer = {"csrf": csrf_token(page), "terms": _field(page.text, "terms"), "version": "1"}
        declined = await browser.post("/enroll/terms", data={**answer, "answer": "decline"})
        assert declined.status_code == 200 and "You declined the terms" in declined.text
        async with setup.muster.container.engine.connect() as conn:
            declines = (
                await conn.execute(select(terms_declines.c.user_principal_name, terms_declines.c.version))
            ).all()
        assert [tuple(row) for row in declines] == [("ada@example.com", 1)]
        assert "Contoso device terms" in (await browser.get("/enroll")).text  # still pending

        assert (await browser.post("/enroll/terms", data={**answer, "answer": "maybe"})).status_code == 400
        forged = await browser.post("/enroll/terms", data={**answer, "answer": "accept", "csrf": "forged"})
        assert forged.status_code == 403
        accepted = await browser.post("/enroll/terms", data={**answer, "answer": "accept"})
        assert accepted.status_code == 200 and SIGNED_IN in accepted.text
        profile = await download_profile(browser, accepted)
        assert profile.status_code == 200 and profile.headers["content-type"] == MOBILECONFIG_TYPE

        async with setup.muster.admin() as admin:
            bumped = await admin.patch(f"{TERMS}/{terms['id']}", json={"version": 2, "bodyText": "New terms"})
            assert bumped.json()["version"] == 2
            statuses = (await admin.get(f"{TERMS}/{terms['id']}/acceptanceStatuses")).json()["value"]
        assert [(s["userPrincipalName"], s["acceptedVersion"], s["acceptedLatest"]) for s in statuses] == [
            ("ada@example.com", 1, False)
        ]
        again = await browser.get("/enroll")
        assert "New terms" in again.text and _field(again.text, "version") == "2"
        stale = await browser.post("/enroll/terms", data={**answer, "answer": "accept"})  # the version 1 page
        assert stale.status_code == 409 and "version 2" in stale.text
        assert (await download_profile(browser, again)).status_code == 403
        await browser.post("/enroll/terms", data={**answer, "version": "2", "answer": "accept"})
        assert (await download_profile(browser, again)).status_code == 200


async def test_users_choose_the_category_of_their_devices_cat_09_003_1579_cat_10_003_1581(tmp_path: Path) -> None:
    """CAT-09 (003:1579), CAT-10 (003:1581), CAT-11 (003:1169): once categories exist, a user signing in to the
    portal is asked to choose one for each of their devices that has none, and finishes with Done."""
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as browser:
        await setup.add_user("ada@example.com")
        engine = setup.muster.container.engine
        own, other = await add_device(engine, "0"), await add_device(engine, "0")
        async with engine.begin() as conn:
            await conn.execute(update(devices).where(devices.c.id == own).values(user_principal_name="Ada@Example.com"))
        page = await sign_in_with_idp(browser)
        assert "Choose a device category" not in page.text  # no category configured yet
        async with setup.muster.admin() as admin:
            hr = (await admin.post(f"{DM}/deviceCategories", json={"displayName": "HR"})).json()
            await admin.post(f"{DM}/deviceCategories", json={"displayName": "<Sales>"})
        page = await browser.get("/enroll")
        assert "Choose a device category" in page.text and SIGNED_IN in page.text
        assert f'name="device" value="{own}"' in page.text and other not in page.text
        assert '<label for="category-0">' in page.text and "&lt;Sales&gt;" in page.text
        choice = {"csrf": csrf_token(page), "device": own}
        stolen = await browser.post("/enroll/category", data={**choice, "device": other, "category": hr["id"]})
        assert stolen.status_code == 400  # not Ada's device
        unknown = await browser.post("/enroll/category", data={**choice, "category": "no-such-category"})
        assert unknown.status_code == 400
        done = await browser.post("/enroll/category", data={**choice, "category": hr["id"]})
        assert done.status_code == 200 and "Choose a device category" not in done.text
        async with setup.muster.admin() as admin:
            chosen = await admin.get(f"{DM}/managedDevices/{own}/deviceCategory")
            assert chosen.json()["displayName"] == "HR"
            assert (await admin.get(f"{DM}/managedDevices/{other}/deviceCategory")).status_code == 404
