"""End to end over real HTTP: users go through the enrollment portal and the Incomplete user enrollments report
shows the attempts that stopped, where and how (seed-catalog-A §2.9 IER-01..07, E27; TC-10).

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt (the report: 003:1125-1197).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from muster.simulators.apple_device import VirtualAppleDevice
from muster.simulators.oidc_provider import OidcUser
from tests.cli.test_admin_cli import muster_cli
from tests.e2e.sign_in_portal import Portal, csrf_token, download_profile, portal, sign_in_with_idp
from tests.harness import DM

ADA = OidcUser(subject="ada-sub", preferred_username="ada@example.com", email="ada@example.com", name="Ada")
REPORT = "/graph/beta/deviceManagement/reports/incompleteUserEnrollments"
IPHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"}
MAC = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"}


class OffsetClock:
    """The real time, moved forward on demand: the server's clock, so a test can let 30 minutes pass."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


async def _report(setup: Portal, **params: str) -> dict[str, Any]:
    async with setup.muster.admin() as admin:
        answer = await admin.get(REPORT, params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted((r["section"], r["actionName"], r["action"], r["operatingSystem"]) for r in report["value"])


async def _assign_terms(setup: Portal) -> None:
    async with setup.muster.admin() as admin:
        terms = (await admin.post(f"{DM}/termsAndConditions", json={"displayName": "T", "title": "T"})).json()
        everyone = {"target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}
        assigned = await admin.post(
            f"{DM}/termsAndConditions/{terms['id']}/assign", json={"termsAndConditionsAssignments": [everyone]}
        )
        assert assigned.status_code == 200, assigned.text


async def test_incomplete_enrollments_report_ier_01_003_1131_ier_07_003_1187(tmp_path: Path, database_url: str) -> None:
    """IER-01 (003:1125-1131): a decline, or more than 30 minutes on a screen, makes an attempt incomplete; a
    device that enrolls completes it. IER-02 (003:1133): coming back after a decline, or after 30 minutes, is a
    new attempt. IER-03 (003:1137): a Mac's attempt is left out. IER-05 (003:1143-1149) tiles, IER-06
    (003:1151-1158) daily counts, IER-07 (003:1166-1197) TermsofUse Decline All and iOSProfileLaunch Took > 30
    minutes."""
    clock = OffsetClock()
    async with portal(tmp_path, database_url=database_url, user=ADA, clock=clock) as setup:
        await setup.add_user("ada@example.com")
        await _assign_terms(setup)
        async with setup.browser() as phone:
            phone.headers.update(IPHONE)
            terms_page = await sign_in_with_idp(phone)  # attempt 1, on the terms
            answer = {"csrf": csrf_token(terms_page), "version": "1"}
            answer["terms"] = terms_page.text.split('name="terms" value="')[1].split('"')[0]
            await phone.post("/enroll/terms", data={**answer, "answer": "decline"})
            declined = await _report(setup)
            assert (declined["initiatedEnrollments"], declined["incompleteEnrollments"]) == (1, 1)
            assert _rows(declined) == [("Terms of use", "TermsofUse", "Decline All", "iOS/iPadOS")]

            await phone.get("/enroll")  # back to the terms: attempt 2
            accepted = await phone.post("/enroll/terms", data={**answer, "answer": "accept"})
            profile = await download_profile(phone, accepted)
            assert profile.status_code == 200
            installed = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile.content)
            async with httpx.AsyncClient(verify=installed.ssl_context()) as http:
                await VirtualAppleDevice(http=http).enroll(profile.content)

        async with setup.browser() as second_phone, setup.browser() as mac:
            second_phone.headers.update(IPHONE)
            mac.headers.update(MAC)
            page = await sign_in_with_idp(second_phone)  # attempt 3: downloads, never installs
            assert (await download_profile(second_phone, page)).status_code == 200
            await sign_in_with_idp(mac)  # not an iOS/iPadOS or Android attempt

            under_way = await _report(setup)
            assert (under_way["initiatedEnrollments"], under_way["incompleteEnrollments"]) == (3, 1)

            clock.advance(timedelta(minutes=31))
            report = await _report(setup)
            assert (report["initiatedEnrollments"], report["incompleteEnrollments"]) == (3, 2)
            assert report["incompleteRate"] == round(2 / 3, 4)
            assert _rows(report) == [
                ("Platform screens", "iOSProfileLaunch", "Took > 30 minutes", "iOS/iPadOS"),
                ("Terms of use", "TermsofUse", "Decline All", "iOS/iPadOS"),
            ]
            assert {r["userPrincipalName"] for r in report["value"]} == {"ada@example.com"}

            await second_phone.get("/enroll")  # IER-02: carrying on after 30 minutes is a new attempt
            again = await _report(setup)
            assert (again["initiatedEnrollments"], again["incompleteEnrollments"]) == (4, 2)

        started = date.fromisoformat(report["value"][0]["startedDateTime"][:10])
        counts = {(d["date"], d["section"]): d["count"] for d in report["daily"]}
        day = started.isoformat()
        assert counts[day, "Terms of use"] == 1 and counts[day, "Platform screens"] == 1
        assert counts[day, "Setup checklist"] == 0 and counts[day, "Compliance/Activation"] == 0
        assert len(report["daily"]) == 15 * 4  # the past two weeks by default: 15 calendar days, 4 sections

        platform_screens = await _report(setup, section="Platform screens")
        assert _rows(platform_screens) == [("Platform screens", "iOSProfileLaunch", "Took > 30 minutes", "iOS/iPadOS")]
        assert {d["section"] for d in platform_screens["daily"]} == {"Platform screens"}
        assert (await _report(setup, operatingSystem="Android"))["initiatedEnrollments"] == 0
        assert (await _report(setup, operatingSystem="iOS"))["initiatedEnrollments"] == 4
        day_before = (started - timedelta(days=1)).isoformat()
        assert (await _report(setup, **{"from": day_before, "to": day_before}))["initiatedEnrollments"] == 0


async def test_report_period_and_filters_are_checked_ier_04_003_1139(tmp_path: Path) -> None:
    """IER-04 (003:1139-1141): any period up to 30 days back; anything else is a clear 400."""
    async with portal(tmp_path, user=ADA) as setup, setup.muster.admin() as admin:
        long_ago = (datetime.now(UTC) - timedelta(days=31)).date().isoformat()
        month = (datetime.now(UTC) - timedelta(days=29)).date().isoformat()
        assert (await admin.get(REPORT, params={"from": month})).status_code == 200
        for params, message in [
            ({"from": long_ago}, "30 days"),
            ({"from": "yesterday"}, "ISO 8601"),
            ({"to": "2026-11-20T10:00:00"}, "time zone"),
            ({"from": month, "to": long_ago}, "end after it starts"),
            ({"operatingSystem": "Windows"}, "operatingSystem"),
            ({"section": "Checkout"}, "section"),
            ({"os": "iOS"}, "Unknown query parameter 'os'"),
        ]:
            answer = await admin.get(REPORT, params=params)
            assert answer.status_code == 400, (params, answer.text)
            assert message in answer.json()["error"]["message"], answer.text


async def test_cli_incomplete_enrollments_ier_04_003_1139(tmp_path: Path) -> None:
    """`muster reports incomplete-enrollments [--days N] [--os iOS]`: the report from the command line, at most
    30 days back (IER-04, 003:1139-1141)."""
    async with portal(tmp_path, user=ADA) as setup, setup.browser() as phone:
        await setup.add_user("ada@example.com")
        phone.headers.update(IPHONE)
        await phone.post("/enroll/profile", data={"csrf": csrf_token(await sign_in_with_idp(phone))})
        muster = setup.muster
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        shown = await muster_cli(env, "reports", "incomplete-enrollments", "--days", "30", "--os", "iOS", "--json")
        assert shown.exit_code == 0, shown.output
        assert (json.loads(shown.output)["initiatedEnrollments"], json.loads(shown.output)["value"]) == (1, [])
        table = await muster_cli(env, "reports", "incomplete-enrollments")
        assert table.exit_code == 0 and "Initiated 1, incomplete 0 (0%)" in table.output, table.output
        android = await muster_cli(env, "reports", "incomplete-enrollments", "--os", "Android", "--json")
        assert json.loads(android.output)["initiatedEnrollments"] == 0
        assert (await muster_cli(env, "reports", "incomplete-enrollments", "--days", "31")).exit_code == 2
