"""Apple enrollment type profiles as pure rules (seed-catalog-C §1.10, R-211, F-7; seed-catalog-A E10, §2.15).
Seed lines: 003:<line> for 003_729e51c15a5a5608.txt, 001:<line> for 001_362880ec96318f47.txt.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.assignments import AssignmentTarget, TargetKind
from muster.domain.enrollment_type_profiles import (
    MAX_PROFILES,
    NO_PROFILE,
    USER_CHOICE,
    EnrollmentType,
    EnrollmentTypeProfile,
    EnrollmentTypeSetting,
    OwnerType,
    ProfileCandidate,
    insertion_priority,
    parse_profile,
    parse_profile_targets,
    reordered,
    resolve,
)
from muster.domain.errors import Conflict, InvalidInput

CHOICE_OPTIONS = [
    {"ownerType": "personal", "enrollmentType": "user"},
    {"ownerType": "company", "enrollmentType": "device"},
]


def test_003_5440_5459_a_new_profile_needs_a_name_and_defaults_to_device_enrollment() -> None:
    """003:5440-5442 (Name required, description optional), 003:5459-5470 (Device enrollment preselected),
    003:5436 (iOS/iPadOS only)."""
    with pytest.raises(InvalidInput, match="displayName is required"):
        parse_profile({"description": "no name"})
    profile = parse_profile({"displayName": "BYOD"})
    assert profile == EnrollmentTypeProfile("BYOD", None, "iOS", EnrollmentTypeSetting(EnrollmentType.DEVICE))
    with pytest.raises(InvalidInput, match="iOS/iPadOS"):
        parse_profile({"displayName": "Macs", "platform": "macOS"})


@pytest.mark.parametrize(
    "body",
    [
        {"displayName": "  "},
        {"displayName": "x" * 201},
        {"displayName": "x", "description": 3},
        {"displayName": "x", "defaultEnrollmentType": "webDeviceEnrollment"},
        {"displayName": "x", "defaultEnrollmentType": "unknown"},
        {"displayName": "x", "unexpected": 1},
        {"displayName": "x", "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile"},
        {"displayName": "x", "priority": 4},
        {"displayName": "x", "availableEnrollmentTypeOptions": "choice"},
        {"displayName": "x", "availableEnrollmentTypeOptions": [{"ownerType": "personal", "enrollmentType": "user"}]},
    ],
)
def test_bad_profile_bodies_get_a_clear_error(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_profile(body)


def test_003_5455_the_choice_sends_personal_devices_to_user_and_corporate_to_device_enrollment() -> None:
    """003:5455: "personal devices will enroll with user enrollment, and corporate devices will enroll with device
    enrollment"; any other pairing is refused with that rule."""
    profile = parse_profile({"displayName": "Choice", "availableEnrollmentTypeOptions": CHOICE_OPTIONS})
    assert profile.setting == USER_CHOICE
    assert profile.setting.offered == (EnrollmentType.DEVICE, EnrollmentType.USER)
    swapped = [
        {"ownerType": "personal", "enrollmentType": "device"},
        {"ownerType": "company", "enrollmentType": "user"},
    ]
    with pytest.raises(InvalidInput, match="personal devices enroll with user enrollment"):
        parse_profile({"displayName": "Wrong", "availableEnrollmentTypeOptions": swapped})
    with pytest.raises(InvalidInput, match="one of the offered types"):
        parse_profile(
            {
                "displayName": "Wrong default",
                "defaultEnrollmentType": "accountDrivenUserEnrollment",
                "availableEnrollmentTypeOptions": CHOICE_OPTIONS,
            }
        )


def test_003_5470_what_each_answer_of_the_user_leads_to() -> None:
    """003:5470: "(Company) owns this device" -> Device Enrollment; "I own this device" -> a second question:
    secure the entire device (Device Enrollment) or only work apps and data (User Enrollment)."""
    assert USER_CHOICE.for_device(OwnerType.COMPANY) is EnrollmentType.DEVICE
    assert USER_CHOICE.for_device(OwnerType.PERSONAL) is EnrollmentType.USER
    assert USER_CHOICE.for_device(OwnerType.PERSONAL, whole_device=True) is EnrollmentType.DEVICE
    assert USER_CHOICE.for_device(None) is EnrollmentType.DEVICE  # no answer: the default
    only_user = EnrollmentTypeSetting(EnrollmentType.USER)
    assert only_user.for_device(OwnerType.COMPANY) is EnrollmentType.USER  # no choice: the selected default
    assert only_user.offered == (EnrollmentType.USER,)


def test_e10_account_driven_user_enrollment_is_a_type_of_its_own() -> None:
    """seed-catalog-A E10, UE-03 (001:96-109): Enrollment type = "Account driven user enrollment"."""
    body = {"displayName": "ADUE", "defaultEnrollmentType": "accountDrivenUserEnrollment"}
    assert parse_profile(body).setting.default is EnrollmentType.ACCOUNT_DRIVEN_USER


@pytest.mark.parametrize(
    ("os_version", "expected"),
    [
        ("14.9", EnrollmentType.USER),
        ("14.8.1", EnrollmentType.USER),
        ("15.0", EnrollmentType.ACCOUNT_DRIVEN_USER),
        ("17.4", EnrollmentType.ACCOUNT_DRIVEN_USER),
        (None, EnrollmentType.ACCOUNT_DRIVEN_USER),
        ("unknown", EnrollmentType.ACCOUNT_DRIVEN_USER),
    ],
)
def test_ue01_account_driven_user_enrollment_falls_back_before_ios_15(
    os_version: str | None, expected: EnrollmentType
) -> None:
    """UE-01 (001:17): on iOS/iPadOS 14.9 or older an ADUE profile enrolls with user enrollment through Company
    Portal instead; the choice's personal answer falls back the same way."""
    assert EnrollmentTypeSetting(EnrollmentType.ACCOUNT_DRIVEN_USER).for_device(None, os_version=os_version) is expected
    choice = EnrollmentTypeSetting(
        EnrollmentType.DEVICE,
        ((OwnerType.PERSONAL, EnrollmentType.ACCOUNT_DRIVEN_USER), (OwnerType.COMPANY, EnrollmentType.DEVICE)),
    )
    assert choice.for_device(OwnerType.PERSONAL, os_version=os_version) is expected
    assert choice.for_device(OwnerType.COMPANY, os_version=os_version) is EnrollmentType.DEVICE


def test_a_patch_keeps_what_it_does_not_name_and_may_repeat_read_only_properties() -> None:
    base = parse_profile({"displayName": "BYOD", "description": "d", "availableEnrollmentTypeOptions": CHOICE_OPTIONS})
    patched = parse_profile({"displayName": "Renamed", "priority": 2, "id": "x"}, base, priority=2)
    assert patched == EnrollmentTypeProfile("Renamed", "d", "iOS", USER_CHOICE)
    no_choice = parse_profile({"availableEnrollmentTypeOptions": []}, base, priority=2)
    assert not no_choice.setting.user_chooses


def test_003_5474_assignments_are_users_only_without_filters() -> None:
    """003:5474-5487: device groups are not supported ("based on user identities, rather than devices"); all users
    and excluded groups are (003:5489)."""
    targets = parse_profile_targets(
        [
            {"target": {"@odata.type": TargetKind.GROUP.value, "groupId": "g1"}},
            {"target": {"@odata.type": TargetKind.EXCLUDED_GROUP.value, "groupId": "g2"}},
            {"target": {"@odata.type": TargetKind.ALL_USERS.value}},
        ]
    )
    assert [t.kind for t in targets] == [TargetKind.GROUP, TargetKind.EXCLUDED_GROUP, TargetKind.ALL_USERS]
    with pytest.raises(InvalidInput, match="rather than devices"):
        parse_profile_targets([{"target": {"@odata.type": TargetKind.ALL_DEVICES.value}}])
    filtered = {
        "@odata.type": TargetKind.ALL_USERS.value,
        "deviceAndAppManagementAssignmentFilterId": "f1",
        "deviceAndAppManagementAssignmentFilterType": "include",
    }
    with pytest.raises(InvalidInput, match="assignment filters are not available"):
        parse_profile_targets([{"target": filtered}])


def test_a_new_profile_goes_last_and_the_26th_is_refused() -> None:
    assert insertion_priority(0) == 1 and insertion_priority(3) == 4
    with pytest.raises(Conflict, match=str(MAX_PROFILES)):
        insertion_priority(MAX_PROFILES)


@given(st.integers(1, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, 30))))
def test_003_5513_reordering_stays_a_permutation_and_keeps_relative_order(case: tuple[int, int, int]) -> None:
    """003:5513-5519 (drag and drop): the moved profile lands at its priority (or last), the others keep order."""
    size, index, priority = case
    ids = [f"p{i}" for i in range(size)]
    moved = reordered(ids, ids[index], priority)
    assert sorted(moved) == sorted(ids)
    assert moved.index(ids[index]) == min(priority, size) - 1
    assert [i for i in moved if i != ids[index]] == [i for i in ids if i != ids[index]]


def test_reordering_refuses_priority_below_one_and_unknown_profiles() -> None:
    with pytest.raises(InvalidInput, match="1 or more"):
        reordered(["a"], "a", 0)
    with pytest.raises(InvalidInput):
        reordered(["a"], "b", 1)


def _candidate(profile_id: str, priority: int, setting: EnrollmentTypeSetting, *targets: AssignmentTarget) -> Any:
    return ProfileCandidate(profile_id, profile_id, priority, setting, targets)


GROUP_A = AssignmentTarget(TargetKind.GROUP, "A")
GROUP_B = AssignmentTarget(TargetKind.GROUP, "B")
ALL_USERS = AssignmentTarget(TargetKind.ALL_USERS)
USER_ONLY = EnrollmentTypeSetting(EnrollmentType.USER)


def test_r211_003_5521_the_higher_priority_profile_applies() -> None:
    """R-211 (003:5521, 001:131-138): a user assigned more than one profile gets the higher-priority one."""
    low = _candidate("low", 2, USER_ONLY, GROUP_A)
    high = _candidate("high", 1, USER_CHOICE, GROUP_B)
    offer = resolve([low, high], has_user=True, group_ids=frozenset({"A", "B"}))
    assert offer.profile == high and offer.setting == USER_CHOICE
    assert resolve([low, high], has_user=True, group_ids=frozenset({"A"})).profile == low


def test_no_profile_means_device_enrollment_and_exclusions_win() -> None:
    """Unassigned, excluded (003:5489) or userless (R-193): no profile, Device Enrollment."""
    excluded = _candidate("p", 1, USER_ONLY, ALL_USERS, AssignmentTarget(TargetKind.EXCLUDED_GROUP, "X"))
    assert resolve([excluded], has_user=True, group_ids=frozenset({"X"})) == NO_PROFILE
    assert resolve([excluded], has_user=True, group_ids=frozenset()).profile == excluded
    assert resolve([excluded], has_user=False, group_ids=frozenset()) == NO_PROFILE
    assert resolve([_candidate("unassigned", 1, USER_ONLY)], has_user=True, group_ids=frozenset({"A"})) == NO_PROFILE
    assert NO_PROFILE.setting.offered == (EnrollmentType.DEVICE,)


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "*"]), st.booleans()),
        min_size=0,
        max_size=8,
    ),
    st.frozensets(st.sampled_from(["A", "B", "C"])),
)
def test_r211_resolution_picks_the_first_applicable_profile_in_priority_order(
    specs: list[tuple[str, bool]], group_ids: frozenset[str]
) -> None:
    """R-211: whatever the order the profiles come in, the winner is the lowest priority number among those
    assigned to the user (an "*" target is all users), or none."""
    profiles = [
        _candidate(
            f"p{index}",
            index + 1,
            USER_CHOICE if choice else USER_ONLY,
            ALL_USERS if group == "*" else AssignmentTarget(TargetKind.GROUP, group),
        )
        for index, (group, choice) in enumerate(specs)
    ]
    applicable = [p for p, (group, _) in zip(profiles, specs, strict=True) if group == "*" or group in group_ids]
    offer = resolve(reversed(profiles), has_user=True, group_ids=group_ids)
    assert offer.profile == (applicable[0] if applicable else None)
