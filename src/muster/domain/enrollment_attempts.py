"""Enrollment attempts and the Incomplete user enrollments report (seed-catalog-A §2.9 IER-01..07, E27).

An attempt starts when a user signs in to the enrollment portal to enroll a device. The portal records the
screen the user has reached; the device side (its first TokenUpdate) completes it. Whether an attempt is
incomplete is decided when the report is read, with the clock: the user declined the terms (IER-07 TermsofUse,
Decline All), or more than 30 minutes passed on one screen without reaching the next (IER-01, "Took > 30
minutes"). Pure rules: no I/O, time is passed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

# IER-01 (003:1131): more than 30 minutes between enrollment sections.
STALL_LIMIT = timedelta(minutes=30)
# IER-04 (003:1139-1141): the past two weeks by default, at most 30 days back.
DEFAULT_WINDOW = timedelta(days=14)
MAX_LOOKBACK = timedelta(days=30)


class Section(StrEnum):
    """IER-06 (003:1153-1158): the four sections of the report's line graph."""

    SETUP_CHECKLIST = "Setup checklist"
    PLATFORM_SCREENS = "Platform screens"
    TERMS_OF_USE = "Terms of use"
    COMPLIANCE_ACTIVATION = "Compliance/Activation"


class Platform(StrEnum):
    """E27 (003:1137): the report covers iOS/iPadOS and Android only (IER-03); other platforms are recorded as
    what they are and left out of it."""

    IOS = "iOS/iPadOS"
    ANDROID = "Android"
    MACOS = "macOS"
    UNKNOWN = "unknown"


REPORTED_PLATFORMS = (Platform.IOS, Platform.ANDROID)


class Screen(StrEnum):
    """The portal screen an attempt has reached, with its IER-07 section and action name (003:1166-1197)."""

    SET_UP_ACCESS = "setUpAccess"  # signed in, the enroll button shown (PreEnrollmentWizard)
    DEVICE_CATEGORY = "deviceCategory"  # the category choice shown (DeviceCategory)
    TERMS_OF_USE = "termsOfUse"  # the terms shown (TermsofUse)
    PROFILE_LAUNCH = "profileLaunch"  # profile downloaded, waiting for the device to install it

    @property
    def section(self) -> Section:
        return _SCREEN_PLACES[self][0]

    @property
    def action_name(self) -> str:
        return _SCREEN_PLACES[self][1]


_SCREEN_PLACES = {
    Screen.SET_UP_ACCESS: (Section.SETUP_CHECKLIST, "PreEnrollmentWizard"),
    Screen.DEVICE_CATEGORY: (Section.SETUP_CHECKLIST, "DeviceCategory"),
    Screen.TERMS_OF_USE: (Section.TERMS_OF_USE, "TermsofUse"),
    Screen.PROFILE_LAUNCH: (Section.PLATFORM_SCREENS, "iOSProfileLaunch"),
}

TOOK_TOO_LONG = "Took > 30 minutes"
DECLINE_ALL = "Decline All"


@dataclass(frozen=True)
class Attempt:
    """What is known of one attempt when the report is read (E27)."""

    id: str
    user_principal_name: str
    platform: Platform
    started_at: datetime
    screen: Screen
    screen_at: datetime  # when the user reached `screen` (last_step_at)
    declined_at: datetime | None  # the terms declined: the attempt ended there
    enrolled: bool  # its device sent its first TokenUpdate


@dataclass(frozen=True)
class Abandonment:
    """Where and how an incomplete attempt stopped (IER-07)."""

    section: Section
    action_name: str
    action: str


def abandonment(attempt: Attempt, now: datetime) -> Abandonment | None:
    """Why `attempt` is incomplete at `now`, or None when it is complete or still under way.

    A device that enrolled completes its attempt (Muster has no compliance policies, so enrolled is "fully
    enrolled and compliant", IER-05). A decline ends it in Terms of use (TC-10, 003:1187-1189); otherwise it is
    incomplete once more than 30 minutes passed on its screen (IER-01)."""
    if attempt.enrolled:
        return None
    if attempt.declined_at is not None:
        return Abandonment(Section.TERMS_OF_USE, "TermsofUse", DECLINE_ALL)
    if now - attempt.screen_at > STALL_LIMIT:
        return Abandonment(attempt.screen.section, attempt.screen.action_name, TOOK_TOO_LONG)
    return None


@dataclass(frozen=True)
class Window:
    """The report's period, [start, end), IER-04."""

    start: datetime
    end: datetime

    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def report_window(start: datetime | None, end: datetime | None, now: datetime) -> Window:
    """The period asked for, defaulting to the past two weeks; ValueError when it starts before the day 30 days
    back (a whole day, as a date picker offers) or does not end after it starts (IER-04, 003:1139-1141)."""
    end = end or now
    start = start or end - DEFAULT_WINDOW
    if start < datetime.combine((now - MAX_LOOKBACK).date(), time(), now.tzinfo):
        raise ValueError("the report covers at most the past 30 days")
    if end <= start:
        raise ValueError("the period must end after it starts")
    return Window(start, end)


@dataclass(frozen=True)
class IncompleteRow:
    attempt: Attempt
    abandonment: Abandonment


@dataclass(frozen=True)
class Report:
    """IER-05 tiles, IER-06 daily counts per section, and the incomplete attempts."""

    initiated: int
    incomplete: list[IncompleteRow]
    daily: list[tuple[date, Section, int]]

    @property
    def incomplete_rate(self) -> float:
        """Abandoned ÷ initiated (IER-05, 003:1149)."""
        return len(self.incomplete) / self.initiated if self.initiated else 0.0


def build_report(
    attempts: list[Attempt], window: Window, now: datetime, *, sections: tuple[Section, ...] = tuple(Section)
) -> Report:
    """The report over attempts started in `window` on a reported platform; an incomplete attempt counts on the
    day it started. `sections` narrows the incomplete rows and the graph (the section filter, IER-04)."""
    initiated = [a for a in attempts if a.platform in REPORTED_PLATFORMS and window.start <= a.started_at < window.end]
    incomplete = [
        IncompleteRow(a, stopped)
        for a in initiated
        if (stopped := abandonment(a, now)) is not None and stopped.section in sections
    ]
    counts = Counter((row.attempt.started_at.date(), row.abandonment.section) for row in incomplete)
    daily = [(day, section, counts[day, section]) for day in window.days() for section in sections]
    return Report(len(initiated), incomplete, daily)


def platform_from_user_agent(user_agent: str) -> Platform:
    """The platform a portal visitor enrolls, from their browser's User-Agent (iPadOS Safari may present
    itself as a Mac: it is then recorded as macOS)."""
    if any(word in user_agent for word in ("iPhone", "iPad", "iPod")):
        return Platform.IOS
    if "Android" in user_agent:
        return Platform.ANDROID
    if "Macintosh" in user_agent:
        return Platform.MACOS
    return Platform.UNKNOWN
