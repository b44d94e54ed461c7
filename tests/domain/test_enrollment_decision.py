"""The enrollment decision (seed-catalog-C F-15 and §2.P-§2.S; seed-catalog-A OWN, DLR/PLR, DEM)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.assignments import AssignmentTarget, FilterMode, TargetKind
from muster.domain.enrollment_decision import (
    CountedDevice,
    Decision,
    EnrollmentAttempt,
    EnrollmentMethod,
    EvaluationState,
    NotApplicable,
    Ownership,
    Target,
    counts_toward_limit,
    decide,
)
from muster.domain.enrollment_restrictions import (
    EnrollmentPolicies,
    LimitPolicy,
    PlatformPolicy,
    PlatformRestriction,
    RestrictionPlatform,
)

M = EnrollmentMethod
P = RestrictionPlatform
ALLOW = PlatformRestriction()
ALL_USERS = (AssignmentTarget(TargetKind.ALL_USERS),)


def group(group_id: str, filter_id: str | None = None, mode: FilterMode = FilterMode.NONE) -> AssignmentTarget:
    return AssignmentTarget(TargetKind.GROUP, group_id, filter_id, mode)


def policies(
    default: PlatformRestriction = ALLOW,
    *,
    platform: tuple[PlatformPolicy, ...] = (),
    default_limit: int = 5,
    limits: tuple[LimitPolicy, ...] = (),
) -> EnrollmentPolicies:
    return EnrollmentPolicies(
        PlatformPolicy("default-platform", "All users and all devices", 0, default),
        LimitPolicy("default-limit", "All users and all devices", 0, default_limit),
        platform,
        limits,
    )


def attempt(
    platform: RestrictionPlatform = P.IOS, method: EnrollmentMethod = M.APPLE_DEVICE_ENROLLMENT, **changes: object
) -> EnrollmentAttempt:
    values: dict[str, object] = {"user_id": "u1", "group_ids": frozenset({"g-sales"}), "os_version": "17.4"}
    values.update(changes)
    return EnrollmentAttempt(platform, method, **values)  # type: ignore[arg-type]


def no_filters(filter_id: str) -> bool:
    raise AssertionError(f"no filter should be evaluated, got {filter_id}")


def evaluation_states(decision: Decision) -> dict[str, EvaluationState]:
    return {e.policy_id: e.state for e in decision.evaluations}


# ---- platform restriction -------------------------------------------------------------------------------------


def test_f15_default_policies_allow_a_plain_enrollment() -> None:
    """R-179 (003:6969): the defaults apply to every user and userless enrollment until another is assigned."""
    decision = decide(attempt(), policies(), no_filters)
    assert decision.allowed and decision.reason == "allowed"
    assert evaluation_states(decision) == {
        "default-platform": EvaluationState.SUCCEEDED,
        "default-limit": EvaluationState.SUCCEEDED,
    }
    assert {e.target for e in decision.evaluations} == {Target.DEVICE}  # 003:7414-7416
    assert {e.priority for e in decision.evaluations} == {0}


def test_r214_platform_blocked_refuses_with_the_seed_texts() -> None:
    """R-214 / E-08 (003:7381): "Device platform blocked" and its detail message."""
    decision = decide(attempt(), policies(PlatformRestriction(platform_blocked=True)), no_filters)
    assert not decision.allowed and decision.reason == "platformBlocked"
    assert decision.failure_reason == "Device platform blocked"
    assert (
        decision.message
        == "This device can't be enrolled while the platform is Blocked under Device Type Restrictions."
    )
    assert decision.remediation and "another platform" in decision.remediation
    assert evaluation_states(decision) == {"default-platform": EvaluationState.FAILED}


def test_plr03_platform_block_applies_to_ade_too() -> None:
    """PLR-03 / R-082 (003:5087): the default blocking iOS fails ADE enrollments ("Invalid Profile")."""
    ade = attempt(method=M.APPLE_ADE_WITH_USER)
    assert decide(ade, policies(PlatformRestriction(platform_blocked=True)), no_filters).reason == "platformBlocked"


def test_plr04_personal_block_lets_corporate_devices_through() -> None:
    """PLR-04 / OWN-09 (003:989, 1005): blocking personal devices leaves ADE and corporate-identifier devices."""
    rules = policies(PlatformRestriction(personal_device_enrollment_blocked=True))
    personal = decide(attempt(), rules, no_filters)
    assert personal.reason == "personalDeviceBlocked" and personal.ownership is Ownership.PERSONAL
    assert decide(attempt(method=M.APPLE_ADE_WITH_USER), rules, no_filters).allowed
    identified = decide(attempt(corporate_identifier_match=True), rules, no_filters)
    assert identified.allowed and identified.ownership is Ownership.CORPORATE


def test_r116_user_enrollment_overrides_the_personal_block() -> None:
    """R-116 (003:5431, 7048): an iOS User Enrollment profile overrides the restriction policy."""
    rules = policies(PlatformRestriction(personal_device_enrollment_blocked=True))
    assert decide(attempt(method=M.APPLE_USER_ENROLLMENT), rules, no_filters).allowed


@pytest.mark.parametrize(
    ("method", "autopilot_registered", "allowed"),
    [
        (M.WINDOWS_AUTOPILOT, False, True),
        (M.WINDOWS_BULK, False, True),
        (M.WINDOWS_CO_MANAGEMENT, False, True),
        (M.WINDOWS_GROUP_POLICY, False, True),
        (M.WINDOWS_AZURE_AD_JOIN, False, False),  # corporate, yet blocked
        (M.WINDOWS_AZURE_AD_JOIN, True, True),
        (M.WINDOWS_WORK_ACCOUNT, False, False),
        (M.WINDOWS_WORK_ACCOUNT, True, True),
        (M.WINDOWS_MDM_ONLY, True, False),  # never authorized by Autopilot registration
    ],
)
def test_r190_r192_windows_personal_block_needs_a_corporate_authorized_enrollment(
    method: EnrollmentMethod, autopilot_registered: bool, allowed: bool
) -> None:
    """R-190 (003:7057-7067), R-192 (003:7073-7083)."""
    rules = policies(PlatformRestriction(personal_device_enrollment_blocked=True))
    windows = attempt(P.WINDOWS, method, os_version="10.0.22631.1", autopilot_registered=autopilot_registered)
    assert decide(windows, rules, no_filters).allowed is allowed


def test_r190_a_dem_windows_enrollment_passes_the_personal_block() -> None:
    """R-190: a DEM account's Windows enrollment is authorized as corporate."""
    rules = policies(PlatformRestriction(personal_device_enrollment_blocked=True))
    assert decide(attempt(P.WINDOWS, M.WINDOWS_MDM_ONLY, enrollment_manager=True), rules, no_filters).allowed


IOS_RANGE = PlatformRestriction(os_minimum_version="16.0", os_maximum_version="17.4.1")


@pytest.mark.parametrize(("version", "allowed"), [("15.8", False), ("16.0", True), ("17.4.1", True), ("17.10", False)])
def test_r183_r184_os_bounds_apply_to_company_portal_enrollments(version: str, allowed: bool) -> None:
    """R-183 (003:7005-7014), R-184: bounds compared as integers (17.10 > 17.4.1)."""
    decision = decide(attempt(os_version=version), policies(IOS_RANGE), no_filters)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "osVersionNotAllowed" and version in decision.message


def test_r183_an_unreadable_os_version_fails_when_bounds_are_set() -> None:
    assert decide(attempt(os_version=None), policies(IOS_RANGE), no_filters).reason == "osVersionNotAllowed"
    assert decide(attempt(os_version=None), policies(), no_filters).allowed


@pytest.mark.parametrize(
    "method", [M.APPLE_ADE_WITH_USER, M.APPLE_ADE_WITHOUT_USER, M.APPLE_SCHOOL_MANAGER, M.APPLE_CONFIGURATOR]
)
def test_r185_os_bounds_are_not_applied_to_apple_programs(method: EnrollmentMethod) -> None:
    """R-185 (003:7164-7166): ADE, Apple School Manager and Apple Configurator ignore min/max."""
    assert decide(attempt(method=method, os_version="15.0"), policies(IOS_RANGE), no_filters).allowed


def test_r185_ade_with_user_outside_the_range_warns_of_the_device_record() -> None:
    """R-185 / E-07 (003:7166): not blocked, but "Couldn't map device record with a user" will follow."""
    decision = decide(attempt(method=M.APPLE_ADE_WITH_USER, os_version="15.0"), policies(IOS_RANGE), no_filters)
    assert decision.allowed and decision.warnings == ("osVersionOutsideRestriction",)


def test_r183_os_bounds_not_applied_to_user_enrollment() -> None:
    """R-183: for iOS, version restrictions only for devices enrolled through Company Portal."""
    assert decide(attempt(method=M.APPLE_USER_ENROLLMENT, os_version="15.0"), policies(IOS_RANGE), no_filters).allowed


def test_r183_os_bounds_apply_to_every_windows_enrollment() -> None:
    windows = PlatformRestriction(os_minimum_version="10.0.22000.0")
    old = attempt(P.WINDOWS, M.WINDOWS_AUTOPILOT, os_version="10.0.19045.3803")
    assert decide(old, policies(windows), no_filters).reason == "osVersionNotAllowed"


def test_r186_android_manufacturer_blocklist_is_case_insensitive() -> None:
    """R-186 (003:7018-7020)."""
    rules = policies(PlatformRestriction(blocked_manufacturers=("Acme",)))
    android = attempt(P.ANDROID, M.ANDROID_DEVICE_ADMINISTRATOR, os_version="13", manufacturer="ACME ")
    decision = decide(android, rules, no_filters)
    assert decision.reason == "manufacturerBlocked" and decision.failure_reason == "Device manufacturer blocked"
    assert decide(attempt(P.ANDROID, M.ANDROID_DEVICE_ADMINISTRATOR, manufacturer="Zed"), rules, no_filters).allowed


def test_r200_blocked_windows_sku_is_refused() -> None:
    """R-200 (003:7187-7195): blocking an edition, here through blockedSkus."""
    rules = policies(PlatformRestriction(blocked_skus=("101",)))
    home = attempt(P.WINDOWS, M.WINDOWS_MDM_ONLY, os_version="10.0.22631.1", operating_system_sku="101")
    assert decide(home, rules, no_filters).reason == "skuBlocked"


def test_r181_android_enterprise_corporate_modes_see_no_platform_restriction() -> None:
    """R-181 (003:6991-6997): platform tabs cover device administrator and work profile only."""
    blocked = policies(PlatformRestriction(platform_blocked=True))
    for method in (M.ANDROID_FULLY_MANAGED, M.ANDROID_CORPORATE_WORK_PROFILE, M.ANDROID_DEDICATED):
        assert decide(attempt(P.ANDROID_FOR_WORK, method), blocked, no_filters).allowed
    assert not decide(attempt(P.ANDROID_FOR_WORK, M.ANDROID_WORK_PROFILE), blocked, no_filters).allowed


# ---- priority resolution ---------------------------------------------------------------------------------------


def test_r207_only_the_highest_priority_assigned_policy_applies() -> None:
    """R-207 (003:7333-7339): Joe in Group A (priority 5) and Group B (priority 2) gets the priority-2 policy."""
    a = PlatformPolicy("a", "Group A", 5, PlatformRestriction(platform_blocked=True), (group("A"),))
    b = PlatformPolicy("b", "Group B", 2, ALLOW, (group("B"),))
    other = PlatformPolicy("c", "Group C", 1, PlatformRestriction(platform_blocked=True), (group("C"),))
    decision = decide(attempt(group_ids=frozenset({"A", "B"})), policies(platform=(a, b, other)), no_filters)
    assert decision.allowed
    platform_rows = [e for e in decision.evaluations if e.policy_type.value == "platformRestriction"]
    assert [(e.policy_id, e.state, e.not_applicable) for e in platform_rows] == [
        ("c", EvaluationState.NOT_APPLICABLE, NotApplicable.NOT_ASSIGNED),
        ("b", EvaluationState.SUCCEEDED, None),
        ("a", EvaluationState.NOT_APPLICABLE, NotApplicable.LOWER_PRIORITY),
        ("default-platform", EvaluationState.NOT_APPLICABLE, NotApplicable.LOWER_PRIORITY),
    ]
    assert [e.target for e in platform_rows] == [Target.USER, Target.USER, Target.USER, Target.DEVICE]


def test_r197_a_policy_with_no_assignment_has_no_effect() -> None:
    """R-197 (003:7176, 7287)."""
    unassigned = PlatformPolicy("x", "Nobody", 1, PlatformRestriction(platform_blocked=True))
    assert decide(attempt(), policies(platform=(unassigned,)), no_filters).allowed


def test_r193_userless_enrollments_get_the_default_only() -> None:
    """R-193 (003:7087), WB-20: non-user-driven enrollments are held to the default."""
    allow_all = PlatformPolicy("x", "All users allowed", 1, ALLOW, ALL_USERS)
    rules = policies(PlatformRestriction(platform_blocked=True), platform=(allow_all,))
    assert decide(attempt(), rules, no_filters).allowed
    for userless in (
        attempt(user_id=None),
        attempt(P.WINDOWS, M.WINDOWS_BULK),
        attempt(method=M.APPLE_ADE_WITHOUT_USER),
    ):
        decision = decide(userless, rules, no_filters)
        assert decision.reason == "platformBlocked"
        assert decision.evaluations[0].not_applicable is NotApplicable.USERLESS
        assert not decision.user_affinity


def test_r191_co_management_gets_only_the_default() -> None:
    """R-191 (003:7071): a co-managed device enrolls with its device token."""
    blocked_for_all = PlatformPolicy("x", "Block", 1, PlatformRestriction(platform_blocked=True), ALL_USERS)
    rules = policies(platform=(blocked_for_all,))
    assert decide(attempt(P.WINDOWS, M.WINDOWS_CO_MANAGEMENT), rules, no_filters).allowed


def test_r200_r216_filters_narrow_the_assignment_and_are_reported() -> None:
    """R-200 (003:7187-7195), R-216/R-217 (003:7402, 7413-7416): a Windows restriction allowing personal
    devices but excluding Windows Home by filter; the filter and its result show on the Enrollment page."""
    home = PlatformPolicy(
        "home",
        "Block Windows 10 home",
        1,
        PlatformRestriction(platform_blocked=True),
        (group("g-sales", "f-home", FilterMode.INCLUDE),),
    )
    rules = policies(platform=(home,))
    windows = attempt(P.WINDOWS, M.WINDOWS_MDM_ONLY, os_version="10.0.19045.1")
    seen: list[str] = []

    def is_home(filter_id: str) -> bool:
        seen.append(filter_id)
        return False

    decision = decide(windows, rules, is_home)
    assert decision.allowed and seen == ["f-home"]
    row = decision.evaluations[0]
    assert (row.policy_id, row.state, row.priority, row.target) == (
        "home",
        EvaluationState.NOT_APPLICABLE,
        1,
        Target.USER,
    )
    assert (row.filter_id, row.filter_result, row.not_applicable) == ("f-home", False, NotApplicable.FILTERED_OUT)
    assert decide(windows, rules, lambda _: True).reason == "platformBlocked"


@st.composite
def platform_lists(draw: st.DrawFn) -> tuple[tuple[PlatformPolicy, ...], frozenset[str]]:
    size = draw(st.integers(0, 25))
    priorities = draw(st.permutations(range(1, size + 1)))
    groups = ["g1", "g2", "g3"]
    found = []
    for index, priority in enumerate(priorities):
        targets = tuple(group(g) for g in draw(st.lists(st.sampled_from(groups), unique=True, max_size=2)))
        found.append(
            PlatformPolicy(f"p{index}", f"Policy {index}", priority, PlatformRestriction(draw(st.booleans())), targets)
        )
    user_groups = frozenset(draw(st.lists(st.sampled_from(groups), unique=True)))
    return tuple(found), user_groups


@given(platform_lists())
def test_r207_the_winner_is_always_the_lowest_priority_number_among_applicable(
    case: tuple[tuple[PlatformPolicy, ...], frozenset[str]],
) -> None:
    """R-207 (003:7333), R-211 [HINT] resolution algorithm: min(priority) among assigned candidates, else the
    default; the decision follows the winner's platform block."""
    candidates, user_groups = case
    decision = decide(attempt(group_ids=user_groups), policies(platform=candidates), no_filters)
    applicable = [p for p in candidates if any(t.group_id in user_groups for t in p.targets)]
    expected = min(applicable, key=lambda p: p.priority).id if applicable else "default-platform"
    winners = [e.policy_id for e in decision.evaluations if e.state is not EvaluationState.NOT_APPLICABLE]
    assert winners[0] == expected
    winner = next((p for p in candidates if p.id == expected), None)
    assert decision.allowed is not (winner is not None and winner.restriction.platform_blocked)


# ---- device limit ----------------------------------------------------------------------------------------------


def test_r206_at_the_limit_the_user_is_told_to_remove_a_device() -> None:
    """R-206 / E-09 (003:7347-7349): refused with a message explaining the restriction."""
    decision = decide(attempt(counted_devices=5), policies(default_limit=5), no_filters)
    assert not decision.allowed and decision.reason == "deviceLimitReached"
    assert "(5)" in decision.message and "Remove a device" in decision.message
    assert decision.remediation and "raise the device limit" in decision.remediation
    assert decide(attempt(counted_devices=4), policies(default_limit=5), no_filters).allowed


def test_r207_limit_policies_resolve_by_priority_too() -> None:
    """R-207 for device limits (003:7333): the assigned limit policy replaces the default."""
    ten = LimitPolicy("ten", "Sales 10", 1, 10, (group("g-sales"),))
    decision = decide(attempt(counted_devices=7), policies(default_limit=5, limits=(ten,)), no_filters)
    assert decision.allowed
    assert evaluation_states(decision)["ten"] is EvaluationState.SUCCEEDED


@pytest.mark.parametrize(
    "method",
    [M.WINDOWS_AZURE_AD_JOIN, M.WINDOWS_AUTOPILOT, M.WINDOWS_BULK, M.WINDOWS_CO_MANAGEMENT, M.WINDOWS_GROUP_POLICY],
)
def test_r194_dlr08_no_device_limit_for_windows_shared_scenarios(method: EnrollmentMethod) -> None:
    """R-194 (003:7088-7095), DLR-08: co-managed, GPO, joined, bulk, Autopilot enrollments ignore the limit."""
    decision = decide(attempt(P.WINDOWS, method, os_version="10.0.22631.1", counted_devices=99), policies(), no_filters)
    assert decision.allowed
    assert all(e.policy_type.value == "platformRestriction" for e in decision.evaluations)


def test_dlr10_windows_mdm_only_is_held_to_the_limit() -> None:
    """DLR-10 (003_729e51c15a5a5608.txt:1425-1431): Settings > Connect enrollments hit the Intune limit."""
    windows = attempt(P.WINDOWS, M.WINDOWS_MDM_ONLY, os_version="10.0.22631.1", counted_devices=2)
    assert decide(windows, policies(default_limit=2), no_filters).reason == "deviceLimitReached"


# ---- device enrollment managers --------------------------------------------------------------------------------


def test_dem05_a_dem_enrolls_up_to_1000_devices_ignoring_the_limit() -> None:
    """DEM-05 (003_729e51c15a5a5608.txt:1442): the 1,001st is refused; DEM-15: corporate, no user affinity."""
    dem = attempt(enrollment_manager=True, counted_devices=999)
    decision = decide(dem, policies(default_limit=1), no_filters)
    assert decision.allowed and decision.ownership is Ownership.CORPORATE and not decision.user_affinity
    assert decision.enrollment_type == "deviceEnrollmentManager"
    refused = decide(attempt(enrollment_manager=True, counted_devices=1000), policies(), no_filters)
    assert refused.reason == "demDeviceLimitReached" and "1000" in refused.message


def test_dem08_a_dem_enrolls_10_android_work_profiles() -> None:
    """DEM-08 (003_729e51c15a5a5608.txt:1485-1487)."""
    work = attempt(P.ANDROID_FOR_WORK, M.ANDROID_WORK_PROFILE, enrollment_manager=True, counted_devices=10)
    assert decide(work, policies(), no_filters).reason == "demDeviceLimitReached"


@pytest.mark.parametrize(
    ("platform", "method"),
    [
        (P.IOS, M.APPLE_ADE_WITH_USER),  # DEM-10
        (P.MAC, M.APPLE_ADE_WITHOUT_USER),
        (P.ANDROID_FOR_WORK, M.ANDROID_CORPORATE_WORK_PROFILE),  # DEM-09
        (P.ANDROID_FOR_WORK, M.ANDROID_FULLY_MANAGED),
    ],
)
def test_dem09_dem10_methods_a_dem_cannot_use(platform: RestrictionPlatform, method: EnrollmentMethod) -> None:
    """DEM-09 (…:1489-1492), DEM-10 (…:1494-1496)."""
    decision = decide(attempt(platform, method, enrollment_manager=True), policies(), no_filters)
    assert decision.reason == "demNotSupported" and decision.evaluations == ()


# ---- ownership, terms, output ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "method", "ownership"),
    [
        (P.IOS, M.APPLE_DEVICE_ENROLLMENT, Ownership.PERSONAL),  # OWN-03
        (P.IOS, M.APPLE_USER_ENROLLMENT, Ownership.PERSONAL),
        (P.IOS, M.APPLE_ADE_WITH_USER, Ownership.CORPORATE),  # OWN-01 d
        (P.IOS, M.APPLE_SCHOOL_MANAGER, Ownership.CORPORATE),
        (P.IOS, M.APPLE_CONFIGURATOR, Ownership.CORPORATE),
        (P.WINDOWS, M.WINDOWS_AZURE_AD_JOIN, Ownership.CORPORATE),  # OWN-04
        (P.WINDOWS, M.WINDOWS_WORK_ACCOUNT, Ownership.PERSONAL),  # OWN-02 (registered only)
        (P.ANDROID_FOR_WORK, M.ANDROID_FULLY_MANAGED, Ownership.CORPORATE),  # OWN-01 g
        (P.ANDROID_FOR_WORK, M.ANDROID_WORK_PROFILE, Ownership.PERSONAL),
    ],
)
def test_own01_own03_ownership_follows_the_method(
    platform: RestrictionPlatform, method: EnrollmentMethod, ownership: Ownership
) -> None:
    """OWN-01..03 (003_729e51c15a5a5608.txt:1007-1018), CID-14 covered in the PLR-04 test."""
    assert decide(attempt(platform, method, os_version="10.0.1.1"), policies(), no_filters).ownership is ownership


def test_tc01_unaccepted_terms_refuse_user_enrollments_only() -> None:
    """TC-01: the user must accept the assigned terms first; userless enrollments skip terms."""
    decision = decide(attempt(unaccepted_terms=("Contoso terms",)), policies(), no_filters)
    assert decision.reason == "termsNotAccepted" and "Contoso terms" in decision.message
    assert decide(attempt(user_id=None, unaccepted_terms=("Contoso terms",)), policies(), no_filters).allowed


def test_a_method_of_another_platform_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not an enrollment method of windows"):
        attempt(P.WINDOWS, M.APPLE_DEVICE_ENROLLMENT)


def test_the_decision_serialises_to_json() -> None:
    decision = decide(attempt(counted_devices=9), policies(), no_filters)
    body = json.loads(json.dumps(decision.to_json()))
    assert body["reason"] == "deviceLimitReached" and body["ownership"] == "personal"
    assert body["evaluations"][0] == {
        "policyId": "default-platform",
        "displayName": "All users and all devices",
        "policyType": "platformRestriction",
        "state": "succeeded",
        "priority": 0,
        "target": "device",
        "filterId": None,
        "filterResult": None,
        "notApplicableReason": None,
    }


# ---- counting devices toward the limit (R-202) -----------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SEEN = CountedDevice(managed=True, last_contact_at=NOW - timedelta(days=1), registration_pending_since=None)


@pytest.mark.parametrize(
    ("device", "counts"),
    [
        (SEEN, True),
        (CountedDevice(True, NOW - timedelta(days=90), None), True),
        (CountedDevice(True, NOW - timedelta(days=90, seconds=1), None), False),  # 90 days contact
        (CountedDevice(True, None, NOW - timedelta(hours=24)), True),  # pending ≤ 24 h
        (CountedDevice(True, NOW, NOW - timedelta(hours=24, seconds=1)), False),
        (CountedDevice(False, NOW, None), False),  # not MDM-managed
        (CountedDevice(True, None, None), False),  # never seen
        (CountedDevice(True, NOW, None, apple_enrollment_failed=True), False),
        (CountedDevice(True, NOW, None, deleted=True), False),
        (CountedDevice(True, NOW, None, enrollment_method=M.WINDOWS_AUTOPILOT), False),  # shared mode
        (CountedDevice(True, NOW, None, enrollment_method=M.WINDOWS_MDM_ONLY), True),
    ],
)
def test_r202_which_devices_count_toward_the_limit(device: CountedDevice, counts: bool) -> None:
    """R-202 (003:7248-7255)."""
    assert counts_toward_limit(device, NOW) is counts
