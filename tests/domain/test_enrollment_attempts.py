"""The rules of the Incomplete user enrollments report (seed-catalog-A §2.9 IER-01..07, E27).

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.enrollment_attempts import (
    DECLINE_ALL,
    TOOK_TOO_LONG,
    Abandonment,
    Attempt,
    Platform,
    Screen,
    Section,
    Window,
    abandonment,
    build_report,
    platform_from_user_agent,
    report_window,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _attempt(
    *,
    started: datetime = NOW,
    screen: Screen = Screen.SET_UP_ACCESS,
    screen_at: datetime | None = None,
    declined_at: datetime | None = None,
    enrolled: bool = False,
    platform: Platform = Platform.IOS,
) -> Attempt:
    return Attempt(
        id="a",
        user_principal_name="ada@example.com",
        platform=platform,
        started_at=started,
        screen=screen,
        screen_at=screen_at or started,
        declined_at=declined_at,
        enrolled=enrolled,
    )


def test_each_screen_is_an_ier_07_section_and_action_003_1166_1197() -> None:
    """IER-07 (003:1166-1197): the section and action name each portal screen reports."""
    assert {(s, s.section, s.action_name) for s in Screen} == {
        (Screen.SET_UP_ACCESS, Section.SETUP_CHECKLIST, "PreEnrollmentWizard"),
        (Screen.DEVICE_CATEGORY, Section.SETUP_CHECKLIST, "DeviceCategory"),
        (Screen.TERMS_OF_USE, Section.TERMS_OF_USE, "TermsofUse"),
        (Screen.PROFILE_LAUNCH, Section.PLATFORM_SCREENS, "iOSProfileLaunch"),
    }


@given(screen=st.sampled_from(Screen), waited=st.integers(min_value=0, max_value=10**7))
def test_more_than_30_minutes_on_a_screen_is_incomplete_ier_01_003_1131(screen: Screen, waited: int) -> None:
    """IER-01 (003:1131): more than 30 minutes between sections makes the attempt incomplete, on its screen."""
    attempt = _attempt(screen=screen, started=NOW - timedelta(hours=5), screen_at=NOW - timedelta(seconds=waited))
    expected = Abandonment(screen.section, screen.action_name, TOOK_TOO_LONG) if waited > 30 * 60 else None
    assert abandonment(attempt, NOW) == expected


@given(screen=st.sampled_from(Screen), waited=st.integers(min_value=0, max_value=10**7))
def test_a_decline_ends_the_attempt_in_terms_of_use_tc_10_003_1187(screen: Screen, waited: int) -> None:
    """TC-10, IER-07 (003:1187-1189): Decline All is incomplete in Terms of use at once, whatever the time."""
    attempt = _attempt(screen=screen, screen_at=NOW - timedelta(seconds=waited), declined_at=NOW)
    assert abandonment(attempt, NOW) == Abandonment(Section.TERMS_OF_USE, "TermsofUse", DECLINE_ALL)


@given(waited=st.integers(min_value=0, max_value=10**7), declined=st.booleans())
def test_an_enrolled_device_completes_its_attempt_ier_05_003_1147(waited: int, declined: bool) -> None:
    """IER-05 (003:1147): an attempt that ends with an enrolled device is not incomplete."""
    attempt = _attempt(
        screen=Screen.PROFILE_LAUNCH,
        screen_at=NOW - timedelta(seconds=waited),
        declined_at=NOW if declined else None,
        enrolled=True,
    )
    assert abandonment(attempt, NOW) is None


def test_the_default_window_is_two_weeks_and_at_most_30_days_back_ier_04_003_1139() -> None:
    """IER-04 (003:1139-1141)."""
    assert report_window(None, None, NOW) == Window(NOW - timedelta(days=14), NOW)
    month = datetime(2026, 10, 24, tzinfo=UTC)  # the whole day 30 days back
    assert report_window(month, None, NOW) == Window(month, NOW)
    with pytest.raises(ValueError, match="30 days"):
        report_window(month - timedelta(seconds=1), None, NOW)
    with pytest.raises(ValueError, match="end after"):
        report_window(NOW - timedelta(days=2), NOW - timedelta(days=3), NOW)
    with pytest.raises(ValueError, match="30 days"):  # the default start of a `to` far back
        report_window(None, NOW - timedelta(days=20), NOW)


attempts = st.builds(
    _attempt,
    started=st.datetimes(
        min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 23, 11, 59), timezones=st.just(UTC)
    ),
    screen=st.sampled_from(Screen),
    declined_at=st.none() | st.just(NOW),
    enrolled=st.booleans(),
    platform=st.sampled_from(Platform),
)


@given(found=st.lists(attempts, max_size=30), section=st.none() | st.sampled_from(Section))
def test_tiles_and_daily_counts_agree_ier_05_003_1143_ier_06_003_1151(
    found: list[Attempt], section: Section | None
) -> None:
    """IER-05 (003:1143-1149): initiated counts the iOS/iPadOS and Android attempts in the period (IER-03,
    003:1137), incomplete those that stopped, rate = incomplete / initiated; IER-06 (003:1151-1158): the daily
    counts per section add up to the incomplete ones, with a zero for every day and section without any."""
    window = Window(NOW - timedelta(days=14), NOW)
    sections = (section,) if section else tuple(Section)
    report = build_report(found, window, NOW, sections=sections)
    in_window = [a for a in found if window.start <= a.started_at < window.end]
    reported = [a for a in in_window if a.platform in (Platform.IOS, Platform.ANDROID)]
    assert report.initiated == len(reported)
    stopped = [a for a in reported if (s := abandonment(a, NOW)) is not None and s.section in sections]
    assert [row.attempt for row in report.incomplete] == stopped
    assert sum(count for _, _, count in report.daily) == len(stopped)
    assert len(report.daily) == 15 * len(sections)
    assert report.incomplete_rate == (len(stopped) / len(reported) if reported else 0.0)


@pytest.mark.parametrize(
    ("user_agent", "platform"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)", Platform.IOS),
        ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X)", Platform.IOS),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8)", Platform.ANDROID),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)", Platform.MACOS),
        ("python-httpx/0.27", Platform.UNKNOWN),
    ],
)
def test_the_platform_comes_from_the_browser_e27_003_1137(user_agent: str, platform: Platform) -> None:
    """E27 (003:1137): the attempt's platform; only iOS/iPadOS and Android are reported (IER-03)."""
    assert platform_from_user_agent(user_agent) == platform
