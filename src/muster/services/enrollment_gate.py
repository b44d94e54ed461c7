"""The enrollment gate: every enrollment path asks it whether a device may enroll (issue 5, seed-catalog-C F-15).

It gathers what `muster.domain.enrollment_decision.decide` needs (the user's groups, whether the user is a device
enrollment manager, the devices that count toward the limit, a corporate identifier match, unaccepted terms, the
restrictions of the device's platform and their assignment filters), calls it, and records the outcome: a refusal
becomes an enrollment-failure record (R-213) and an `EnrollmentRefused` for the path to answer with; an admitted
enrollment's decision is kept for the device's Enrollment page (R-216).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from muster.domain.assignment_filters import FilterPlatform, FilterRule, FilterUsage, parse_filter
from muster.domain.clock import Clock
from muster.domain.corporate_identifiers import DevicePlatform, Key, identity_keys
from muster.domain.enrollment_decision import Decision, EnrollmentAttempt, Ownership, decide, ownership_of
from muster.domain.enrollment_methods import EnrollmentMethod
from muster.domain.enrollment_restrictions import EnrollmentPolicies, RestrictionPlatform
from muster.domain.errors import DomainError, InvalidInput
from muster.services.terms import TermsRow, assigned_to

DEVICE_OWNERSHIP = {Ownership.CORPORATE: "Corporate", Ownership.PERSONAL: "Personal"}


@dataclass(frozen=True)
class EnrollingDevice:
    """What the enrolling device tells about itself (Apple: the Authenticate check-in)."""

    platform: RestrictionPlatform
    identity_platform: DevicePlatform  # the CID-15 row its corporate identifiers are matched by
    udid: str | None = None
    serial_number: str | None = None
    imei: str | None = None
    os_version: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    operating_system_sku: str | None = None


@dataclass(frozen=True)
class GateRequest:
    org_id: str
    method: EnrollmentMethod
    user_principal_name: str | None
    device: EnrollingDevice
    enrollment_request_id: str | None = None
    enrollment_profile_name: str | None = None


class EnrollmentRefused(DomainError):
    """The gate refused the enrollment; `failure_id` is the enrollment-failure record (its "activity ID")."""

    code = "enrollmentRefused"

    def __init__(self, decision: Decision, failure_id: str) -> None:
        super().__init__(decision.message)
        self.decision = decision
        self.failure_id = failure_id


@dataclass(frozen=True)
class FailureRecord:
    """One row of the Enrollment failures report (R-213, 003:7375-7381)."""

    id: str
    org_id: str
    enrollment_request_id: str | None
    user_principal_name: str | None
    enrollment_method: str
    operating_system: str
    os_version: str | None
    serial_number: str | None
    decision: Decision
    occurred_at: datetime


class GateDirectory(Protocol):
    async def user_by_upn(self, org_id: str, upn: str) -> dict[str, Any] | None: ...

    async def group_ids_of(self, org_id: str, member_id: str) -> frozenset[str]: ...


class GateRestrictions(Protocol):
    async def policies_for(self, org_id: str, platform: RestrictionPlatform) -> EnrollmentPolicies: ...


class StoredFilter(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def platform(self) -> str: ...

    @property
    def rule(self) -> str: ...


class GateFilters(Protocol):
    async def get_many(self, org_id: str, filter_ids: Sequence[str]) -> Sequence[StoredFilter]: ...


class MatchedIdentity(Protocol):
    @property
    def id(self) -> str: ...


class GateIdentities(Protocol):
    async def find_match(self, org_id: str, keys: Sequence[Key]) -> MatchedIdentity | None: ...

    async def mark_contacted(self, identity_id: str, now: datetime, enrolled: bool) -> None:
        """CID-11: the imported identity's device enrolled."""
        ...


class GateManagers(Protocol):
    async def is_manager(self, org_id: str, user: str) -> bool: ...

    async def enrolled_device_count(self, org_id: str, user_principal_name: str) -> int: ...


class GateTerms(Protocol):
    async def unaccepted(self, org_id: str, user_id: str) -> list[TermsRow]: ...


class GateRecords(Protocol):
    async def counted_devices(
        self, org_id: str, user_principal_name: str, now: datetime, *, excluding_udid: str | None
    ) -> int:
        """The user's devices that count toward the device limit (R-202), the enrolling one left out."""
        ...

    async def record_failure(self, failure: FailureRecord) -> None: ...

    async def keep_decision(self, enrollment_request_id: str, decision: Decision) -> None:
        """Keep an admitted decision with its enrollment request, for the device's Enrollment page."""
        ...


class EnrollmentGate:
    def __init__(
        self,
        *,
        directory: GateDirectory,
        restrictions: GateRestrictions,
        filters: GateFilters,
        identities: GateIdentities,
        managers: GateManagers,
        terms: GateTerms,
        records: GateRecords,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._restrictions = restrictions
        self._filters = filters
        self._identities = identities
        self._managers = managers
        self._terms = terms
        self._records = records
        self._clock = clock

    async def admit(self, request: GateRequest) -> Decision:
        """The decision on `request`; raises EnrollmentRefused (after recording the failure) when refused."""
        decision, matched = await self._decide(request)
        if not decision.allowed:
            failure_id = str(uuid.uuid4())
            await self._records.record_failure(_failure(failure_id, request, decision, self._clock.now()))
            raise EnrollmentRefused(decision, failure_id)
        if request.enrollment_request_id is not None:
            await self._records.keep_decision(request.enrollment_request_id, decision)
        if matched is not None:  # the corporate identifier shows "Enrolled" from now on (CID-11)
            await self._identities.mark_contacted(matched.id, self._clock.now(), enrolled=True)
        return decision

    async def evaluate(self, request: GateRequest) -> Decision:
        """The decision alone, recording nothing (a preview for the portal and the benchmark)."""
        decision, _ = await self._decide(request)
        return decision

    async def _decide(self, request: GateRequest) -> tuple[Decision, MatchedIdentity | None]:
        """The decision and the corporate identifier that matched the device, if one did.

        The lookups that do not depend on each other run at once, in two rounds, so the decision waits for two
        rounds of round trips rather than ten in a row (the Python work per query stays: bench/enrollment_decision).
        """
        org_id, device, upn = request.org_id, request.device, request.user_principal_name
        keys = identity_keys(
            device.identity_platform,
            device.serial_number,
            device.imei,
            device.manufacturer,
            device.model,
            os_version=device.os_version,
        )
        user, manager, counted, match, policies = await asyncio.gather(
            self._directory.user_by_upn(org_id, upn) if upn else _none(),
            self._managers.is_manager(org_id, upn) if upn else _false(),
            self._records.counted_devices(org_id, upn, self._clock.now(), excluding_udid=device.udid)
            if upn
            else _zero(),
            self._identities.find_match(org_id, keys) if keys else _none(),
            self._restrictions.policies_for(org_id, device.platform),
        )
        user_id = str(user["id"]) if user else None
        group_ids, stored, manager_devices, unaccepted = await asyncio.gather(
            self._directory.group_ids_of(org_id, user_id) if user_id else _no_groups(),
            self._filters.get_many(org_id, _filter_ids(policies)),
            self._managers.enrolled_device_count(org_id, upn) if manager and upn else _zero(),
            self._terms.unaccepted(org_id, user_id) if user_id else _no_terms(),
        )
        terms = assigned_to(unaccepted, group_ids)
        attempt = EnrollmentAttempt(
            platform=device.platform,
            method=request.method,
            user_id=user_id or upn,  # a user the directory does not know (yet) still enrolls as a user, in no group
            group_ids=group_ids,
            os_version=device.os_version,
            manufacturer=device.manufacturer,
            operating_system_sku=device.operating_system_sku,
            corporate_identifier_match=match is not None,
            enrollment_manager=manager,
            counted_devices=manager_devices if manager else counted,
            unaccepted_terms=tuple(t.title or t.display_name for t in terms),
        )
        rules = {row.id: _parsed(str(row.platform), row.rule) for row in stored}
        properties = _filter_properties(request, ownership_of(attempt))

        def filter_matches(filter_id: str) -> bool:
            parsed = rules.get(filter_id)
            return parsed is not None and parsed.matches(properties)

        return decide(attempt, policies, filter_matches), match


async def _none() -> None:
    return None


async def _false() -> bool:
    return False


async def _zero() -> int:
    return 0


async def _no_groups() -> frozenset[str]:
    return frozenset()


async def _no_terms() -> list[TermsRow]:
    return []


def _filter_ids(policies: EnrollmentPolicies) -> list[str]:
    targets = [t for p in policies.platform for t in p.targets] + [t for p in policies.limits for t in p.targets]
    return sorted({t.filter_id for t in targets if t.filter_id is not None})


def _filter_properties(request: GateRequest, ownership: Ownership) -> dict[str, str | None]:
    """The device properties an enrollment-time filter may use (003:7207-7222)."""
    device = request.device
    return {
        "osVersion": device.os_version,
        "model": device.model,
        "manufacturer": device.manufacturer,
        "deviceOwnership": DEVICE_OWNERSHIP[ownership],
        "enrollmentProfileName": request.enrollment_profile_name,
        "operatingSystemSKU": device.operating_system_sku,
    }


@lru_cache(maxsize=1024)
def _parsed(platform: str, rule: str) -> FilterRule | None:
    """A stored filter parsed for enrollment-time use. A rule using a property enrollment cannot evaluate never
    matches: an include filter then keeps its policy from applying, an exclude filter lets it apply."""
    try:
        return parse_filter(rule, platform=FilterPlatform(platform), usage=FilterUsage.ENROLLMENT)
    except (InvalidInput, ValueError):
        return None


def _failure(failure_id: str, request: GateRequest, decision: Decision, now: datetime) -> FailureRecord:
    device = request.device
    return FailureRecord(
        id=failure_id,
        org_id=request.org_id,
        enrollment_request_id=request.enrollment_request_id,
        user_principal_name=request.user_principal_name,
        enrollment_method=decision.enrollment_type,
        operating_system=device.identity_platform.value,
        os_version=device.os_version,
        serial_number=device.serial_number,
        decision=decision,
        occurred_at=now,
    )
