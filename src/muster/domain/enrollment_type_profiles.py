"""Apple enrollment type profiles (Graph `appleUserInitiatedEnrollmentProfile`): whether a user enrolling a
device through the personal channel (Company Portal, not a corporate Apple method, 003:5436) gets Device
Enrollment, User Enrollment, or the choice between them (seed-catalog-C §1.10, F-7; seed-catalog-A E10, §2.15).

A profile names a default enrollment type and, for "Determine based on user choice", the type each ownership
answer leads to: personal devices enroll with user enrollment, corporate devices with device enrollment
(003:5455). Profiles are assigned to users only (003:5474-5487) and ordered by priority, 1 the highest; when
several apply to a user, the highest wins (R-211, 003:5521). With none, the user gets device enrollment, as
before enrollment type profiles existed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from muster.domain.assignments import AssignmentTarget, TargetKind, match, parse_targets
from muster.domain.errors import Conflict, InvalidInput

ODATA_TYPE = "#microsoft.graph.appleUserInitiatedEnrollmentProfile"
OPTION_TYPE = "#microsoft.graph.appleOwnerTypeEnrollmentType"
PLATFORM = "iOS"  # Graph devicePlatformType; the seed offers the profile for iOS/iPadOS only (003:5436)
ACCOUNT_DRIVEN_MINIMUM_MAJOR = 15  # iOS/iPadOS (UE-01, 001:17)
MAX_PROFILES = 25  # the seeds set no limit: the same as enrollment restrictions
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 1500
DEVICE_GROUPS_REFUSED = (
    "device groups are not supported: enrollment type profiles are based on user identities, rather than devices"
)
CHOICE_RULE = (
    "with the user's choice, personal devices enroll with user enrollment and corporate devices with device "
    "enrollment: availableEnrollmentTypeOptions must be [{ownerType: personal, enrollmentType: user or "
    "accountDrivenUserEnrollment}, {ownerType: company, enrollmentType: device}], or empty for no choice"
)


class EnrollmentType(StrEnum):
    """The Graph `appleUserInitiatedEnrollmentType` values Muster implements (`unknown` and
    `webDeviceEnrollment` are not in the seeds)."""

    DEVICE = "device"
    USER = "user"
    ACCOUNT_DRIVEN_USER = "accountDrivenUserEnrollment"  # seed-catalog-A E10, UE-03


class OwnerType(StrEnum):
    """Graph `managedDeviceOwnerType`: the user's answer to "I own this device" / "(Company) owns this device"."""

    COMPANY = "company"
    PERSONAL = "personal"


@dataclass(frozen=True)
class EnrollmentTypeSetting:
    """The profile's Settings page (003:5459-5470): one type for everyone, or the user's choice (`choices`
    non-empty: the type each ownership answer leads to)."""

    default: EnrollmentType = EnrollmentType.DEVICE
    choices: tuple[tuple[OwnerType, EnrollmentType], ...] = ()

    @property
    def user_chooses(self) -> bool:
        return bool(self.choices)

    @property
    def offered(self) -> tuple[EnrollmentType, ...]:
        """The enrollment types a user may end up with, the default first."""
        others = [kind for _, kind in self.choices if kind is not self.default]
        return (self.default, *dict.fromkeys(others))

    def to_graph(self) -> dict[str, Any]:
        return {
            "defaultEnrollmentType": self.default.value,
            "availableEnrollmentTypeOptions": [
                {"@odata.type": OPTION_TYPE, "ownerType": owner.value, "enrollmentType": kind.value}
                for owner, kind in self.choices
            ],
        }

    def for_device(
        self, owner: OwnerType | None, *, whole_device: bool = False, os_version: str | None = None
    ) -> EnrollmentType:
        """The type a device enrolls with. With the choice, "(Company) owns this device" gives device enrollment;
        "I own this device" gives user enrollment unless the user then asks to secure the entire device
        (`whole_device`, 003:5470). Without the choice, or no answer, the default (003:5455). Account-driven user
        enrollment needs iOS/iPadOS 15: an older device gets user enrollment with Company Portal (UE-01, 001:17)."""
        if not self.user_chooses or owner is None:
            kind = self.default
        elif owner is OwnerType.PERSONAL and whole_device:
            kind = EnrollmentType.DEVICE
        else:
            kind = dict(self.choices)[owner]
        if kind is EnrollmentType.ACCOUNT_DRIVEN_USER and _before_account_driven(os_version):
            return EnrollmentType.USER
        return kind


def _before_account_driven(os_version: str | None) -> bool:
    """Whether an iOS/iPadOS version is known to be older than 15 (an unknown version is not)."""
    found = re.match(r"\d+", os_version or "")
    return found is not None and int(found.group()) < ACCOUNT_DRIVEN_MINIMUM_MAJOR


USER_CHOICE = EnrollmentTypeSetting(
    EnrollmentType.DEVICE, ((OwnerType.PERSONAL, EnrollmentType.USER), (OwnerType.COMPANY, EnrollmentType.DEVICE))
)


@dataclass(frozen=True)
class EnrollmentTypeProfile:
    """What an admin edits: Basics (name and description, not shown to users, 003:5440-5442) and Settings."""

    display_name: str
    description: str | None = None
    platform: str = PLATFORM
    setting: EnrollmentTypeSetting = EnrollmentTypeSetting()


_EDITABLE = frozenset(
    {"@odata.type", "displayName", "description", "platform", "defaultEnrollmentType", "availableEnrollmentTypeOptions"}
)
# Graph clients often send back a whole object: its read-only properties are accepted and ignored.
_READ_ONLY = frozenset({"id", "createdDateTime", "lastModifiedDateTime", "priority", "roleScopeTagIds"})


def parse_profile(
    body: Mapping[str, Any], base: EnrollmentTypeProfile | None = None, *, priority: int | None = None
) -> EnrollmentTypeProfile:
    """`base` (None: a new profile, whose displayName is required) with the properties of a Graph body.
    `priority` is the profile's current one: a body may repeat it, not change it (setPriority does)."""
    unknown = sorted(set(body) - _EDITABLE - _READ_ONLY)
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} is not a property of {ODATA_TYPE}")
    if body.get("@odata.type", ODATA_TYPE) != ODATA_TYPE:
        raise InvalidInput(f"@odata.type must be {ODATA_TYPE}")
    if "priority" in body and body["priority"] != priority:
        raise InvalidInput("priority is changed with the setPriority action")
    if base is None:
        if "displayName" not in body:
            raise InvalidInput("displayName is required")
        base = EnrollmentTypeProfile("")
    changes: dict[str, Any] = {}
    if "displayName" in body:
        changes["display_name"] = _display_name(body["displayName"])
    if "description" in body:
        changes["description"] = _description(body["description"])
    if body.get("platform", PLATFORM) != PLATFORM:
        raise InvalidInput(f"platform must be {PLATFORM}: enrollment type profiles are for iOS/iPadOS")
    changes["setting"] = parse_setting(body, base.setting)
    return replace(base, **changes)


def _display_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"displayName must be a non-blank text of at most {MAX_NAME_LENGTH} characters")
    return value


def _description(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH):
        raise InvalidInput(f"description must be a text of at most {MAX_DESCRIPTION_LENGTH} characters")
    return value


def parse_setting(body: Mapping[str, Any], base: EnrollmentTypeSetting) -> EnrollmentTypeSetting:
    """`base` with `defaultEnrollmentType` and `availableEnrollmentTypeOptions` of `body`, when given."""
    default = _enrollment_type(body["defaultEnrollmentType"]) if "defaultEnrollmentType" in body else base.default
    choices = _choices(body["availableEnrollmentTypeOptions"]) if "availableEnrollmentTypeOptions" in body else None
    setting = EnrollmentTypeSetting(default, base.choices if choices is None else choices)
    if setting.user_chooses and default not in dict(setting.choices).values():
        raise InvalidInput("with the user's choice, defaultEnrollmentType must be one of the offered types")
    return setting


def _enrollment_type(value: Any) -> EnrollmentType:
    try:
        return EnrollmentType(value)
    except ValueError:
        names = ", ".join(kind.value for kind in EnrollmentType)
        raise InvalidInput(f"enrollmentType must be one of {names}") from None


_USER_ENROLLMENTS = (EnrollmentType.USER, EnrollmentType.ACCOUNT_DRIVEN_USER)


def _choices(value: Any) -> tuple[tuple[OwnerType, EnrollmentType], ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(item, dict) for item in value):
        raise InvalidInput(CHOICE_RULE)
    found: dict[OwnerType, EnrollmentType] = {}
    for item in value:
        try:
            owner = OwnerType(item.get("ownerType"))
        except ValueError:
            raise InvalidInput(CHOICE_RULE) from None
        found[owner] = _enrollment_type(item.get("enrollmentType"))
    personal = found.get(OwnerType.PERSONAL)
    if found.get(OwnerType.COMPANY) is not EnrollmentType.DEVICE or personal not in _USER_ENROLLMENTS:
        raise InvalidInput(CHOICE_RULE)
    assert personal is not None
    return ((OwnerType.PERSONAL, personal), (OwnerType.COMPANY, EnrollmentType.DEVICE))


# ---- assignments ----------------------------------------------------------------------------------------------


def parse_profile_targets(bodies: Any) -> tuple[AssignmentTarget, ...]:
    """Graph `appleEnrollmentProfileAssignments`: user groups to include or exclude, or all users. Never all
    devices (003:5474-5487), never an assignment filter (the seeds name none for these profiles)."""
    targets = parse_targets(bodies)
    if any(target.kind is TargetKind.ALL_DEVICES for target in targets):
        raise InvalidInput(DEVICE_GROUPS_REFUSED)
    if any(target.filter_id is not None for target in targets):
        raise InvalidInput("assignment filters are not available for enrollment type profiles")
    return targets


# ---- priorities (1 is the highest) ----------------------------------------------------------------------------


def insertion_priority(existing: int) -> int:
    """The priority of a new profile among `existing` ones: last, the lowest (as the Intune list shows a new
    profile at its end). Refuses one beyond MAX_PROFILES."""
    if existing >= MAX_PROFILES:
        raise Conflict(
            f"this organisation already has {MAX_PROFILES} enrollment type profiles, the most allowed; "
            "delete one or change an existing one instead"
        )
    return existing + 1


def reordered(ordered_ids: Sequence[str], profile_id: str, priority: int) -> list[str]:
    """`ordered_ids` (priority 1 first) with `profile_id` moved to `priority`, the others keeping their relative
    order, so priorities stay the permutation 1..N (drag and drop, 003:5513-5519). Beyond the end means last."""
    if profile_id not in ordered_ids:
        raise InvalidInput(f"{profile_id} is not an enrollment type profile of this organisation")
    if priority < 1:
        raise InvalidInput("priority must be 1 or more (1 is the highest)")
    others = [other for other in ordered_ids if other != profile_id]
    position = min(priority, len(ordered_ids)) - 1
    return [*others[:position], profile_id, *others[position:]]


# ---- resolution -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileCandidate:
    """A profile as resolution reads it."""

    id: str
    display_name: str
    priority: int
    setting: EnrollmentTypeSetting
    targets: tuple[AssignmentTarget, ...]


@dataclass(frozen=True)
class EnrollmentOffer:
    """What a user is offered: the profile that applies (None: no profile, device enrollment) and its setting."""

    profile: ProfileCandidate | None
    setting: EnrollmentTypeSetting


NO_PROFILE = EnrollmentOffer(None, EnrollmentTypeSetting(EnrollmentType.DEVICE))


def resolve(profiles: Iterable[ProfileCandidate], *, has_user: bool, group_ids: frozenset[str]) -> EnrollmentOffer:
    """The offer for a user in `group_ids` (nested groups included): the highest-priority profile assigned to
    them (R-211, 003:5521), exclusions winning. A userless enrollment gets no profile (R-193)."""
    if not has_user:
        return NO_PROFILE
    for profile in sorted(profiles, key=lambda p: (p.priority, p.id)):
        if match(profile.targets, has_user=True, group_ids=group_ids, filter_matches=_no_filters).applies:
            return EnrollmentOffer(profile, profile.setting)
    return NO_PROFILE


def _no_filters(filter_id: str) -> bool:
    raise AssertionError(f"enrollment type profiles take no assignment filter ({filter_id})")
