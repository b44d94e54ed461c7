"""Enrollment restrictions: device platform restrictions and device limit restrictions, and their priority lists.

Graph `deviceEnrollmentConfiguration` subtypes (seed-catalog-C §1.11, §1.12, §2.P-§2.S). Each organisation has
one default policy of each type (priority 0, always evaluated last, editable, never deleted: R-179, R-208, R-210)
and up to 25 others per priority list (R-195, R-203), priority 1 being the highest (R-207). Limit policies form
one priority list; platform restrictions form one list per platform, as each platform tab does in Intune
(003:7145-7150, R-199).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from muster.domain.assignments import AssignmentTarget
from muster.domain.errors import Conflict, InvalidInput

MAX_POLICIES_PER_LIST = 25
MIN_DEVICE_LIMIT, MAX_DEVICE_LIMIT = 1, 15  # R-180, DLR-01
# The seeds state no default (C gap 10, A-01): 5 is Intune's own default and the FAQ's "up to five devices".
DEFAULT_DEVICE_LIMIT = 5
MAX_LIST_ITEMS = 100
MAX_ITEM_LENGTH = 128
DEFAULT_PRIORITY = 0


class RestrictionPlatform(StrEnum):
    """Graph `enrollmentRestrictionPlatformType` names of the platforms restrictions cover (R-177, R-181)."""

    IOS = "ios"
    MAC = "mac"
    WINDOWS = "windows"
    ANDROID = "android"  # Android device administrator
    ANDROID_FOR_WORK = "androidForWork"  # Android Enterprise personally-owned work profile

    @property
    def takes_filters(self) -> bool:
        """Assignment filters exist for macOS, iOS and Windows restrictions, not Android (R-200)."""
        return self not in (RestrictionPlatform.ANDROID, RestrictionPlatform.ANDROID_FOR_WORK)


class ConfigurationType(StrEnum):
    """Graph `deviceEnrollmentConfigurationType` values of the four kinds of restriction."""

    SINGLE_PLATFORM = "singlePlatformRestriction"
    DEFAULT_PLATFORMS = "defaultPlatformRestrictions"
    LIMIT = "limit"
    DEFAULT_LIMIT = "defaultLimit"

    @property
    def is_default(self) -> bool:
        return self in (ConfigurationType.DEFAULT_PLATFORMS, ConfigurationType.DEFAULT_LIMIT)

    @property
    def is_limit(self) -> bool:
        return self in (ConfigurationType.LIMIT, ConfigurationType.DEFAULT_LIMIT)


# Graph property of each platform inside the default `deviceEnrollmentPlatformRestrictionsConfiguration`.
DEFAULT_RESTRICTION_PROPERTIES: Mapping[RestrictionPlatform, str] = {
    RestrictionPlatform.IOS: "iosRestriction",
    RestrictionPlatform.MAC: "macOSRestriction",
    RestrictionPlatform.WINDOWS: "windowsRestriction",
    RestrictionPlatform.ANDROID: "androidRestriction",
    RestrictionPlatform.ANDROID_FOR_WORK: "androidForWorkRestriction",
}

# Version formats: how many dotted integers a bound may have. iOS accepts "16.0" as well as "16.0.1" and
# Android "8.0" as well as "8.0.0.0": Intune's own forms and the seeds' examples ("Android 8.0+", SCF-06) use
# them, and a missing component compares as 0. Windows keeps the full `major.minor.build.rev` form (10.0.22631.0)
# because its build number is what separates releases. macOS takes no bounds at all.
VERSION_COMPONENTS: Mapping[RestrictionPlatform, tuple[int, int]] = {
    RestrictionPlatform.IOS: (2, 3),
    RestrictionPlatform.WINDOWS: (4, 4),
    RestrictionPlatform.ANDROID: (2, 4),
    RestrictionPlatform.ANDROID_FOR_WORK: (2, 4),
}
VERSION_FORMATS: Mapping[RestrictionPlatform, str] = {
    RestrictionPlatform.IOS: "major.minor or major.minor.rev (e.g. 16.0 or 16.4.1)",
    RestrictionPlatform.WINDOWS: "major.minor.build.rev (e.g. 10.0.22631.0)",
    RestrictionPlatform.ANDROID: "major.minor[.rev[.build]] (e.g. 9.0)",
    RestrictionPlatform.ANDROID_FOR_WORK: "major.minor[.rev[.build]] (e.g. 9.0)",
}
_DOTTED = re.compile(r"\d{1,9}(?:\.\d{1,9})*")

Version = tuple[int, ...]


def parse_bound(text: str, platform: RestrictionPlatform) -> Version:
    """A restriction's min/max version, in the platform's format (R-184); InvalidInput names the format."""
    limits = VERSION_COMPONENTS.get(platform)
    if limits is None:
        raise InvalidInput(f"{platform.value} restrictions take no OS version bounds")
    shortest, longest = limits
    if not _DOTTED.fullmatch(text) or not shortest <= text.count(".") + 1 <= longest:
        raise InvalidInput(f"{text!r} is not a {platform.value} version: use {VERSION_FORMATS[platform]}")
    return tuple(int(part) for part in text.split("."))


def device_version(text: str | None) -> Version | None:
    """The version a device reports, read as its leading dotted integers ("17.1.2", "10.0.22631.2861");
    None when it has none."""
    found = _DOTTED.match((text or "").strip())
    return tuple(int(part) for part in found.group().split(".")) if found else None


def compare_versions(left: Version, right: Version) -> int:
    """-1, 0 or 1, comparing component by component as integers, missing components being 0 (R-184)."""
    width = max(len(left), len(right))
    a, b = left + (0,) * (width - len(left)), right + (0,) * (width - len(right))
    return (a > b) - (a < b)


@dataclass(frozen=True)
class PlatformRestriction:
    """Graph `deviceEnrollmentPlatformRestriction`: what one platform's restriction allows (003:7155-7162)."""

    platform_blocked: bool = False
    personal_device_enrollment_blocked: bool = False
    os_minimum_version: str | None = None
    os_maximum_version: str | None = None
    blocked_manufacturers: tuple[str, ...] = ()
    blocked_skus: tuple[str, ...] = ()

    def to_graph(self) -> dict[str, Any]:
        return {
            "platformBlocked": self.platform_blocked,
            "personalDeviceEnrollmentBlocked": self.personal_device_enrollment_blocked,
            "osMinimumVersion": self.os_minimum_version,
            "osMaximumVersion": self.os_maximum_version,
            "blockedManufacturers": list(self.blocked_manufacturers),
            "blockedSkus": list(self.blocked_skus),
        }

    @classmethod
    def from_graph(cls, body: Mapping[str, Any]) -> PlatformRestriction:
        """From a stored (already validated) Graph body."""
        return cls(
            bool(body.get("platformBlocked")),
            bool(body.get("personalDeviceEnrollmentBlocked")),
            body.get("osMinimumVersion"),
            body.get("osMaximumVersion"),
            tuple(body.get("blockedManufacturers") or ()),
            tuple(body.get("blockedSkus") or ()),
        )

    def manufacturer_blocked(self, manufacturer: str | None) -> bool:
        """Case-insensitive, surrounding spaces ignored (R-186)."""
        wanted = (manufacturer or "").strip().casefold()
        return bool(wanted) and any(blocked.strip().casefold() == wanted for blocked in self.blocked_manufacturers)

    def sku_blocked(self, sku: str | None) -> bool:
        wanted = (sku or "").strip().casefold()
        return bool(wanted) and any(blocked.strip().casefold() == wanted for blocked in self.blocked_skus)


_RESTRICTION_KEYS = frozenset(PlatformRestriction().to_graph()) | {"@odata.type"}


def parse_platform_restriction(
    body: Any, platform: RestrictionPlatform, *, base: PlatformRestriction | None = None
) -> PlatformRestriction:
    """A Graph `deviceEnrollmentPlatformRestriction` for `platform`, over `base` (PATCH semantics: absent keys
    keep their value). Rejects what the platform does not support: OS bounds on macOS (R-183), manufacturers
    outside Android (R-186), SKUs outside Windows."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the {platform.value} restriction must be an object")
    unknown = sorted(set(body) - _RESTRICTION_KEYS)
    if unknown:
        raise InvalidInput(f"unknown restriction property {unknown[0]!r}")
    merged = {**(base or PlatformRestriction()).to_graph(), **body}
    restriction = PlatformRestriction(
        _flag(merged, "platformBlocked"),
        _flag(merged, "personalDeviceEnrollmentBlocked"),
        _bound(merged, "osMinimumVersion", platform),
        _bound(merged, "osMaximumVersion", platform),
        _names(merged, "blockedManufacturers"),
        _names(merged, "blockedSkus"),
    )
    _check_supported(restriction, platform)
    return restriction


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false")
    return value


def _bound(body: Mapping[str, Any], name: str, platform: RestrictionPlatform) -> str | None:
    value = body[name]
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a version string or null")
    parse_bound(value, platform)
    return value


def _names(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body[name]
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise InvalidInput(f"{name} must be a list of at most {MAX_LIST_ITEMS} names")
    if not all(isinstance(item, str) and 0 < len(item.strip()) <= MAX_ITEM_LENGTH for item in value):
        raise InvalidInput(f"each of {name} must be a non-blank name of at most {MAX_ITEM_LENGTH} characters")
    return tuple(dict.fromkeys(item.strip() for item in value))


def _check_supported(restriction: PlatformRestriction, platform: RestrictionPlatform) -> None:
    android = platform in (RestrictionPlatform.ANDROID, RestrictionPlatform.ANDROID_FOR_WORK)
    if restriction.blocked_manufacturers and not android:
        raise InvalidInput("blockedManufacturers is supported on Android restrictions only")
    if restriction.blocked_skus and platform is not RestrictionPlatform.WINDOWS:
        raise InvalidInput("blockedSkus is supported on Windows restrictions only")
    low, high = restriction.os_minimum_version, restriction.os_maximum_version
    if low and high and compare_versions(parse_bound(low, platform), parse_bound(high, platform)) > 0:
        raise InvalidInput(f"osMinimumVersion {low} is above osMaximumVersion {high}")


def parse_device_limit(value: Any) -> int:
    """A device limit, 1 to 15 (R-180, DLR-01)."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DEVICE_LIMIT <= value <= MAX_DEVICE_LIMIT:
        raise InvalidInput(f"limit must be a whole number from {MIN_DEVICE_LIMIT} to {MAX_DEVICE_LIMIT}")
    return value


# ---- priority lists -------------------------------------------------------------------------------------------


def insertion_priority(existing: int) -> int:
    """The priority of a new policy in a list of `existing` non-default policies: just above the default, i.e.
    last among them (R-205, R-208). Refuses the 26th (R-195, R-203)."""
    if existing >= MAX_POLICIES_PER_LIST:
        raise Conflict(
            f"this list already holds {MAX_POLICIES_PER_LIST} restrictions besides the default, the most allowed; "
            "delete one or change an existing one instead"
        )
    return existing + 1


def moved(ordered_ids: Sequence[str], policy_id: str, priority: int) -> list[str]:
    """The list `ordered_ids` (priority 1 first) with `policy_id` moved to `priority`; every other policy keeps
    its relative order, so the priorities stay the permutation 1..N (R-209). A priority beyond the end means
    last, as a drag to the bottom does."""
    if policy_id not in ordered_ids:
        raise InvalidInput(f"{policy_id} is not in this priority list")
    if priority < 1:
        raise InvalidInput("priority must be 1 or more (1 is the highest; the default keeps 0)")
    others = [other for other in ordered_ids if other != policy_id]
    position = min(priority, len(ordered_ids)) - 1
    return [*others[:position], policy_id, *others[position:]]


# ---- evaluated policies (what the decision reads) ------------------------------------------------------------


@dataclass(frozen=True)
class PlatformPolicy:
    """A platform restriction as `decide` reads it; priority 0 is the default."""

    id: str
    display_name: str
    priority: int
    restriction: PlatformRestriction
    targets: tuple[AssignmentTarget, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.priority == DEFAULT_PRIORITY


@dataclass(frozen=True)
class LimitPolicy:
    """A device limit restriction as `decide` reads it; priority 0 is the default."""

    id: str
    display_name: str
    priority: int
    limit: int
    targets: tuple[AssignmentTarget, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.priority == DEFAULT_PRIORITY


@dataclass(frozen=True)
class EnrollmentPolicies:
    """Everything `decide` needs about restrictions for one platform: the default and the other policies of the
    platform's list, and of the limit list (any order: `decide` sorts by priority)."""

    default_platform: PlatformPolicy
    default_limit: LimitPolicy
    platform: tuple[PlatformPolicy, ...] = field(default=())
    limits: tuple[LimitPolicy, ...] = field(default=())
