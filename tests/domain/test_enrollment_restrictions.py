"""Enrollment restriction settings and priority lists (seed-catalog-C §1.11, §1.12, §2.Q-§2.S)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.enrollment_restrictions import (
    DEFAULT_DEVICE_LIMIT,
    MAX_POLICIES_PER_LIST,
    PlatformRestriction,
    RestrictionPlatform,
    compare_versions,
    device_version,
    insertion_priority,
    moved,
    parse_bound,
    parse_device_limit,
    parse_platform_restriction,
)
from muster.domain.errors import Conflict, InvalidInput

P = RestrictionPlatform


@pytest.mark.parametrize(
    ("platform", "text"),
    [
        (P.WINDOWS, "10.0.22631.0"),
        (P.ANDROID, "9.0"),
        (P.ANDROID_FOR_WORK, "8.1.0.1"),
        (P.IOS, "16.0"),
        (P.IOS, "16.4.1"),
    ],
)
def test_r184_version_formats_per_platform_are_accepted(platform: RestrictionPlatform, text: str) -> None:
    """R-184 (003:7159-7162): Windows major.minor.build.rev; Android major.minor.rev.build; iOS major.minor.rev."""
    assert parse_bound(text, platform) == tuple(int(p) for p in text.split("."))


@pytest.mark.parametrize(
    ("platform", "text"),
    [
        (P.WINDOWS, "10.0"),  # Windows needs its build number
        (P.WINDOWS, "10.0.22631.0.1"),
        (P.IOS, "16"),
        (P.IOS, "16.0.1.2"),
        (P.ANDROID, "9.x"),
        (P.ANDROID, "9..0"),
        (P.ANDROID, " 9.0"),
        (P.IOS, "-1.0"),
        (P.IOS, "1234567890.0"),
    ],
)
def test_r184_bad_version_strings_are_refused_naming_the_format(platform: RestrictionPlatform, text: str) -> None:
    """R-184 [HINT]: reject strings that don't match the platform's dotted-integer pattern."""
    with pytest.raises(InvalidInput, match="use "):
        parse_bound(text, platform)


def test_r183_macos_takes_no_version_bounds() -> None:
    """R-183, 003:7007-7012 (catalog C gap 16): macOS has MDM allow/block and personally owned only."""
    with pytest.raises(InvalidInput, match="no OS version bounds"):
        parse_platform_restriction({"osMinimumVersion": "13.0"}, P.MAC)


def test_r184_versions_compare_component_wise_as_integers() -> None:
    """R-184: "compare component by component as integers" (10 > 9, unlike strings; missing parts are 0)."""
    assert compare_versions((16, 10), (16, 9, 5)) == 1
    assert compare_versions((16, 0), (16, 0, 0)) == 0
    assert compare_versions((9,), (10, 0)) == -1


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=4), st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_version_comparison_is_antisymmetric_and_matches_padded_tuples(a: list[int], b: list[int]) -> None:
    """R-184: the comparison is a total order equal to comparing zero-padded integer tuples."""
    left, right = tuple(a), tuple(b)
    assert compare_versions(left, right) == -compare_versions(right, left)
    width = max(len(a), len(b))
    padded = (left + (0,) * (width - len(a)), right + (0,) * (width - len(b)))
    assert compare_versions(left, right) == (padded[0] > padded[1]) - (padded[0] < padded[1])


def test_device_versions_are_read_from_their_leading_dotted_integers() -> None:
    assert device_version("17.1.2") == (17, 1, 2)
    assert device_version("10.0.22631.2861 (Build)") == (10, 0, 22631, 2861)
    assert device_version("unknown") is None
    assert device_version(None) is None


def test_r184_minimum_above_maximum_is_refused() -> None:
    """R-184: min must not be above max (compared as integers: 9.0 < 10.0)."""
    with pytest.raises(InvalidInput, match="above osMaximumVersion"):
        parse_platform_restriction({"osMinimumVersion": "10.0", "osMaximumVersion": "9.0"}, P.ANDROID)
    assert parse_platform_restriction({"osMinimumVersion": "9.0", "osMaximumVersion": "10.0"}, P.ANDROID)


def test_r186_manufacturers_only_on_android_and_skus_only_on_windows() -> None:
    """R-186 (003:7018-7020, 7158): the manufacturer blocklist is Android only; blockedSkus is Windows only."""
    with pytest.raises(InvalidInput, match="Android restrictions only"):
        parse_platform_restriction({"blockedManufacturers": ["Acme"]}, P.IOS)
    with pytest.raises(InvalidInput, match="Windows restrictions only"):
        parse_platform_restriction({"blockedSkus": ["101"]}, P.ANDROID)
    android = parse_platform_restriction({"blockedManufacturers": [" Acme ", "Acme", "Zed"]}, P.ANDROID)
    assert android.blocked_manufacturers == ("Acme", "Zed")
    assert android.manufacturer_blocked("ACME") and not android.manufacturer_blocked("Other")


@pytest.mark.parametrize(
    "body",
    [
        {"platformBlocked": "yes"},
        {"personalDeviceEnrollmentBlocked": 1},
        {"osMinimumVersion": 9},
        {"blockedManufacturers": "Acme"},
        {"blockedManufacturers": [""]},
        {"blockedManufacturers": ["x" * 129]},
        {"somethingElse": True},
        [],
    ],
)
def test_bad_restriction_bodies_get_a_clear_error(body: object) -> None:
    with pytest.raises(InvalidInput):
        parse_platform_restriction(body, P.ANDROID)


def test_a_patch_keeps_the_properties_it_does_not_name() -> None:
    base = PlatformRestriction(platform_blocked=True, os_minimum_version="9.0")
    updated = parse_platform_restriction({"personalDeviceEnrollmentBlocked": True}, P.ANDROID, base=base)
    assert updated == PlatformRestriction(True, True, "9.0")
    assert PlatformRestriction.from_graph(updated.to_graph()) == updated


@pytest.mark.parametrize("value", [0, 16, -1, 1.5, "5", True, None])
def test_r180_device_limit_outside_1_to_15_is_refused(value: object) -> None:
    """R-180 / DLR-01 (003:6985): the device limit is 1 to 15."""
    with pytest.raises(InvalidInput, match="from 1 to 15"):
        parse_device_limit(value)


def test_r180_device_limit_bounds_and_default() -> None:
    """R-180: 1 and 15 are allowed; the default limit (A-01: seeds give none) is 5."""
    assert parse_device_limit(1) == 1 and parse_device_limit(15) == 15
    assert DEFAULT_DEVICE_LIMIT == 5


def test_r205_r208_a_new_policy_goes_just_above_the_default() -> None:
    """R-205, R-208 (003:7318, 7341): priority = count of non-default policies after insertion."""
    assert insertion_priority(0) == 1
    assert insertion_priority(7) == 8


def test_r195_r203_the_26th_policy_of_a_list_is_refused() -> None:
    """R-195 (003:7126), R-203 (003:7257): up to 25 policies plus the default."""
    assert insertion_priority(MAX_POLICIES_PER_LIST - 1) == MAX_POLICIES_PER_LIST
    with pytest.raises(Conflict, match="25"):
        insertion_priority(MAX_POLICIES_PER_LIST)


@given(st.integers(1, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, 30))))
def test_r209_reorders_stay_a_permutation_and_keep_relative_order(case: tuple[int, int, int]) -> None:
    """R-209 (003:7343-7345): moving one policy keeps every other one's relative order (also those an admin out
    of scope cannot see, R-198) and the list a permutation; the moved one lands at its priority."""
    size, index, priority = case
    ids = [f"p{i}" for i in range(size)]
    result = moved(ids, ids[index], priority)
    assert sorted(result) == sorted(ids)
    assert result.index(ids[index]) + 1 == min(priority, size)
    assert [i for i in result if i != ids[index]] == [i for i in ids if i != ids[index]]


def test_r209_priority_below_one_or_unknown_policy_is_refused() -> None:
    with pytest.raises(InvalidInput, match="1 or more"):
        moved(["a", "b"], "a", 0)
    with pytest.raises(InvalidInput, match="not in this priority list"):
        moved(["a", "b"], "c", 1)


def test_r200_filters_are_not_for_android_restrictions() -> None:
    """R-200 (003:7177, 7223): filters for macOS, iOS and Windows, not Android."""
    assert {p for p in P if p.takes_filters} == {P.IOS, P.MAC, P.WINDOWS}
