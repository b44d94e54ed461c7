"""The enrollment decision: may this device enroll, as whose, and why (seed-catalog-C F-15, §2.P-§2.S).

`decide` is pure: the caller gathers the user's groups, the devices counted toward the limit
(`counts_toward_limit`), the corporate-identifier match, the DEM flag and the unaccepted terms, and passes an
evaluator of assignment filters. Checks run in F-15's order: DEM compatibility, the platform restriction
(blocked platform, personal device, OS version, manufacturer, SKU), the device limit (or the DEM cap), then terms.
The first failed check refuses; the `Decision` records every policy considered for the device's Enrollment page
(R-216, R-217).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from muster.domain.assignments import NOT_ASSIGNED, AssignmentMatch, match
from muster.domain.enrollment_failures import Failure, failure
from muster.domain.enrollment_methods import (
    CORPORATE_METHODS,
    DEM_ANDROID_WORK_PROFILE_CAP,
    DEM_DEVICE_CAP,
    DEM_REFUSED_METHODS,
    METHOD_PLATFORMS,
    PLATFORM_EXEMPT_METHODS,
    SHARED_MODE_METHODS,
    USERLESS_METHODS,
    VERSION_CHECKED_METHODS,
    WINDOWS_AUTOPILOT_AUTHORIZED,
    WINDOWS_CORPORATE_AUTHORIZED,
    EnrollmentMethod,
)
from muster.domain.enrollment_restrictions import (
    EnrollmentPolicies,
    LimitPolicy,
    PlatformPolicy,
    PlatformRestriction,
    RestrictionPlatform,
    compare_versions,
    device_version,
    parse_bound,
)

CONTACT_WINDOW = timedelta(days=90)
PENDING_WINDOW = timedelta(hours=24)


class Ownership(StrEnum):
    """Graph `managedDeviceOwnerType` values."""

    CORPORATE = "company"
    PERSONAL = "personal"


class PolicyType(StrEnum):
    PLATFORM_RESTRICTION = "platformRestriction"
    LIMIT_RESTRICTION = "limitRestriction"


class EvaluationState(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_APPLICABLE = "notApplicable"


class Target(StrEnum):
    """Default policies target the device, the others the user (003:7414-7416)."""

    USER = "user"
    DEVICE = "device"


class NotApplicable(StrEnum):
    """Why a policy considered did not apply."""

    NOT_ASSIGNED = "notAssigned"  # no include target reaches the user, or an exclusion does
    FILTERED_OUT = "filteredOut"  # its assignment filter left the device out
    LOWER_PRIORITY = "lowerPriority"  # a higher-priority policy applies
    USERLESS = "userless"  # not user-driven: only the default applies


@dataclass(frozen=True)
class EnrollmentAttempt:
    platform: RestrictionPlatform
    method: EnrollmentMethod
    user_id: str | None  # None: userless (ADE without user affinity, bulk, self-deploying...)
    group_ids: frozenset[str] = frozenset()  # the user's and the device's groups, nested groups included
    os_version: str | None = None
    manufacturer: str | None = None
    operating_system_sku: str | None = None
    corporate_identifier_match: bool = False  # the caller applies the CID-15 platform matrix
    enrollment_manager: bool = False  # the user is a device enrollment manager
    autopilot_registered: bool = False  # Windows: the device's hardware hash is registered with Autopilot
    counted_devices: int = 0  # the user's (or the DEM's) devices that count (`counts_toward_limit`)
    unaccepted_terms: tuple[str, ...] = ()  # titles of assigned terms not accepted at their current version

    def __post_init__(self) -> None:
        if self.platform not in METHOD_PLATFORMS[self.method]:
            raise ValueError(f"{self.method.value} is not an enrollment method of {self.platform.value}")

    @property
    def user_driven(self) -> bool:
        return self.user_id is not None and self.method not in USERLESS_METHODS


@dataclass(frozen=True)
class PolicyEvaluation:
    """One line of the device's Enrollment page (R-216)."""

    policy_id: str
    display_name: str
    policy_type: PolicyType
    state: EvaluationState
    priority: int
    target: Target
    filter_id: str | None = None
    filter_result: bool | None = None
    not_applicable: NotApplicable | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "policyId": self.policy_id,
            "displayName": self.display_name,
            "policyType": self.policy_type.value,
            "state": self.state.value,
            "priority": self.priority,
            "target": self.target.value,
            "filterId": self.filter_id,
            "filterResult": self.filter_result,
            "notApplicableReason": self.not_applicable.value if self.not_applicable else None,
        }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # stable camelCase code: "allowed" or the failure's code
    failure_reason: str | None  # the Enrollment failures report's "failure reason"
    message: str  # for the device user
    remediation: str | None  # recommended steps
    ownership: Ownership
    user_affinity: bool
    enrollment_type: str  # Graph `deviceEnrollmentType` to record on the device
    evaluations: tuple[PolicyEvaluation, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "failureReason": self.failure_reason,
            "message": self.message,
            "remediation": self.remediation,
            "ownership": self.ownership.value,
            "userAffinity": self.user_affinity,
            "enrollmentType": self.enrollment_type,
            "evaluations": [evaluation.to_json() for evaluation in self.evaluations],
            "warnings": list(self.warnings),
        }


def ownership_of(attempt: EnrollmentAttempt) -> Ownership:
    """Corporate for DEM enrollments (DEM-15), corporate methods (OWN-01, OWN-04) and corporate identifiers
    (CID-14, OWN-09); personal otherwise (OWN-02, OWN-03)."""
    corporate = attempt.enrollment_manager or attempt.method in CORPORATE_METHODS or attempt.corporate_identifier_match
    return Ownership.CORPORATE if corporate else Ownership.PERSONAL


def decide(attempt: EnrollmentAttempt, policies: EnrollmentPolicies, filter_matches: Callable[[str], bool]) -> Decision:
    """F-15: the decision on one enrollment attempt. `filter_matches(filter_id)` evaluates an assignment filter
    on the enrolling device (only the filters of assigned candidates are evaluated)."""
    outcome = _Outcome(attempt)
    if attempt.enrollment_manager and attempt.method in DEM_REFUSED_METHODS:
        return outcome.refuse(failure("demNotSupported", method=attempt.method.value))
    if attempt.method not in PLATFORM_EXEMPT_METHODS:
        platform, considered = _resolve(policies.platform, policies.default_platform, attempt, filter_matches)
        refusal = _platform_refusal(attempt, outcome, platform.restriction)
        outcome.record(PolicyType.PLATFORM_RESTRICTION, platform, considered, failed=refusal is not None)
        if refusal is not None:
            return outcome.refuse(refusal)
    if attempt.enrollment_manager:
        refusal = _dem_cap_refusal(attempt)
        if refusal is not None:
            return outcome.refuse(refusal)
    elif attempt.user_driven and attempt.method not in SHARED_MODE_METHODS:
        limit, limits_considered = _resolve(policies.limits, policies.default_limit, attempt, filter_matches)
        over = attempt.counted_devices >= limit.limit
        outcome.record(PolicyType.LIMIT_RESTRICTION, limit, limits_considered, failed=over)
        if over:
            return outcome.refuse(failure("deviceLimitReached", limit=limit.limit))
    if attempt.user_driven and attempt.unaccepted_terms:
        return outcome.refuse(failure("termsNotAccepted", titles="; ".join(attempt.unaccepted_terms)))
    return outcome.allow()


class _Outcome:
    """The decision being built: the policies recorded so far, and warnings."""

    def __init__(self, attempt: EnrollmentAttempt) -> None:
        self.attempt = attempt
        self.ownership = ownership_of(attempt)
        self.evaluations: list[PolicyEvaluation] = []
        self.warnings: list[str] = []

    def record(
        self,
        policy_type: PolicyType,
        winner: PlatformPolicy | LimitPolicy,
        considered: Sequence[tuple[PlatformPolicy | LimitPolicy, AssignmentMatch, NotApplicable | None]],
        *,
        failed: bool,
    ) -> None:
        for policy, assignment, reason in considered:
            state = EvaluationState.NOT_APPLICABLE
            if policy is winner:
                state = EvaluationState.FAILED if failed else EvaluationState.SUCCEEDED
            filter_id = assignment.target.filter_id if assignment.target else None
            self.evaluations.append(
                PolicyEvaluation(
                    policy.id,
                    policy.display_name,
                    policy_type,
                    state,
                    policy.priority,
                    Target.DEVICE if policy.is_default else Target.USER,
                    filter_id,
                    assignment.filter_result,
                    reason,
                )
            )

    def refuse(self, found: Failure) -> Decision:
        return self._decision(allowed=False, reason=found.code, found=found)

    def allow(self) -> Decision:
        return self._decision(allowed=True, reason="allowed", found=None)

    def _decision(self, *, allowed: bool, reason: str, found: Failure | None) -> Decision:
        attempt = self.attempt
        return Decision(
            allowed=allowed,
            reason=reason,
            failure_reason=found.failure_reason if found else None,
            message=found.message if found else "The device can enroll.",
            remediation=found.remediation if found else None,
            ownership=self.ownership,
            user_affinity=attempt.user_driven and not attempt.enrollment_manager,
            enrollment_type="deviceEnrollmentManager" if attempt.enrollment_manager else attempt.method.value,
            evaluations=tuple(self.evaluations),
            warnings=tuple(self.warnings),
        )


_Policy = TypeVar("_Policy", PlatformPolicy, LimitPolicy)


def _resolve(
    candidates: Sequence[_Policy],
    default: _Policy,
    attempt: EnrollmentAttempt,
    filter_matches: Callable[[str], bool],
) -> tuple[_Policy, list[tuple[_Policy, AssignmentMatch, NotApplicable | None]]]:
    """The policy that applies, and every policy considered with why it did not apply: the assigned candidate
    with the lowest priority number, else the default (R-207, R-179); the default only when the enrollment is
    not user-driven (R-193). Candidates after the winner are not evaluated (their filters are not run)."""
    considered: list[tuple[_Policy, AssignmentMatch, NotApplicable | None]] = []
    winner: _Policy | None = None
    for policy in sorted(candidates, key=lambda p: p.priority):
        if winner is not None:
            considered.append((policy, NOT_ASSIGNED, NotApplicable.LOWER_PRIORITY))
            continue
        if not attempt.user_driven:
            considered.append((policy, NOT_ASSIGNED, NotApplicable.USERLESS))
            continue
        assignment = match(policy.targets, has_user=True, group_ids=attempt.group_ids, filter_matches=filter_matches)
        if assignment.applies:
            winner = policy
            considered.append((policy, assignment, None))
        else:
            filtered = assignment.filter_result is not None
            considered.append(
                (policy, assignment, NotApplicable.FILTERED_OUT if filtered else NotApplicable.NOT_ASSIGNED)
            )
    considered.append((default, NOT_ASSIGNED, NotApplicable.LOWER_PRIORITY if winner is not None else None))
    return winner or default, considered


def _platform_refusal(
    attempt: EnrollmentAttempt, outcome: _Outcome, restriction: PlatformRestriction
) -> Failure | None:
    if restriction.platform_blocked:  # PLR-03: ADE devices too ("Invalid Profile" on the device)
        return failure("platformBlocked")
    if restriction.personal_device_enrollment_blocked and _counts_as_personal(attempt, outcome.ownership):
        return failure("personalDeviceBlocked")
    version_refusal = _version_refusal(attempt, outcome, restriction)
    if version_refusal is not None:
        return version_refusal
    if restriction.manufacturer_blocked(attempt.manufacturer):
        return failure("manufacturerBlocked", manufacturer=attempt.manufacturer or "")
    if restriction.sku_blocked(attempt.operating_system_sku):
        return failure("skuBlocked", sku=attempt.operating_system_sku or "")
    return None


def _counts_as_personal(attempt: EnrollmentAttempt, ownership: Ownership) -> bool:
    """Whether a personal-device block stops this enrollment (PLR-04: corporate devices pass)."""
    if attempt.method is EnrollmentMethod.APPLE_USER_ENROLLMENT:
        return False  # "An iOS User Enrollment profile overrides an enrollment restriction policy" (003:7048)
    if attempt.platform is RestrictionPlatform.WINDOWS:
        # Windows needs an enrollment authorized as corporate, whatever the ownership it records.
        authorized = (
            attempt.enrollment_manager
            or attempt.method in WINDOWS_CORPORATE_AUTHORIZED
            or (attempt.method in WINDOWS_AUTOPILOT_AUTHORIZED and attempt.autopilot_registered)
        )
        return not authorized
    return ownership is Ownership.PERSONAL


def _version_refusal(attempt: EnrollmentAttempt, outcome: _Outcome, restriction: PlatformRestriction) -> Failure | None:
    low, high = restriction.os_minimum_version, restriction.os_maximum_version
    if low is None and high is None:
        return None
    version = device_version(attempt.os_version)
    outside = version is None or (
        (low is not None and compare_versions(version, parse_bound(low, attempt.platform)) < 0)
        or (high is not None and compare_versions(version, parse_bound(high, attempt.platform)) > 0)
    )
    if not outside:
        return None
    if attempt.method in VERSION_CHECKED_METHODS:
        return failure(
            "osVersionNotAllowed", version=attempt.os_version or "unknown", low=low or "any", high=high or "any"
        )
    if attempt.method is EnrollmentMethod.APPLE_ADE_WITH_USER:
        # R-185, E-07: not blocked, but the directory device record cannot be created after Company Portal sign-in.
        outcome.warnings.append("osVersionOutsideRestriction")
    return None


def _dem_cap_refusal(attempt: EnrollmentAttempt) -> Failure | None:
    """A DEM enrolls up to 1,000 devices (DEM-05), 10 Android personally-owned work profiles (DEM-08)."""
    work_profile = attempt.method is EnrollmentMethod.ANDROID_WORK_PROFILE
    cap = DEM_ANDROID_WORK_PROFILE_CAP if work_profile else DEM_DEVICE_CAP
    return failure("demDeviceLimitReached", limit=cap) if attempt.counted_devices >= cap else None


# ---- the devices that count toward the limit (R-202) --------------------------------------------------------


@dataclass(frozen=True)
class CountedDevice:
    """What R-202 looks at on one of the user's device records."""

    managed: bool  # enrolled in MDM (not only registered in the directory)
    last_contact_at: datetime | None  # None: never contacted
    registration_pending_since: datetime | None  # None: not pending
    apple_enrollment_failed: bool = False
    deleted: bool = False
    enrollment_method: EnrollmentMethod | None = None  # None: unknown (counts)


def counts_toward_limit(device: CountedDevice, now: datetime) -> bool:
    """R-202 (`DeviceCountsForDeviceCap`): managed, seen in the last 90 days, not pending for more than 24 hours,
    not failed Apple enrollment, not deleted, not enrolled in a shared-device mode. A pending device that has not
    contacted the server yet counts from the start of its registration."""
    if not device.managed or device.deleted or device.apple_enrollment_failed:
        return False
    if device.enrollment_method in SHARED_MODE_METHODS:
        return False
    pending = device.registration_pending_since
    if pending is not None and now - pending > PENDING_WINDOW:
        return False
    seen = device.last_contact_at or pending
    return seen is not None and now - seen <= CONTACT_WINDOW
