"""Enrollment restrictions (Graph `deviceEnrollmentConfigurations`): CRUD, assignment and priorities.

Bodies are Graph's: `#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration` (one platform),
`...PlatformRestrictionsConfiguration` (the default, every platform) and `...LimitConfiguration`. Edits apply to
new enrollments only (R-201): nothing is re-evaluated, `version` counts the edits. An admin reaches only policies
within its scope for the permission at hand; others are "not found" (R-198).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from muster.domain.assignment_filters import FilterPlatform, FilterUsage, parse_filter
from muster.domain.assignments import AssignmentTarget, TargetKind, parse_targets
from muster.domain.clock import Clock
from muster.domain.enrollment_restrictions import (
    DEFAULT_DEVICE_LIMIT,
    DEFAULT_PRIORITY,
    DEFAULT_RESTRICTION_PROPERTIES,
    ConfigurationType,
    EnrollmentPolicies,
    PlatformRestriction,
    RestrictionPlatform,
    parse_device_limit,
    parse_platform_restriction,
)
from muster.domain.errors import InvalidInput, NotAllowed, NotFound
from muster.domain.rbac import Scope
from muster.services.audit import AuditSink

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 1500
# Restrictions apply to users: groups, excluded groups, all users; never "all devices".
RESTRICTION_TARGETS = (TargetKind.GROUP, TargetKind.EXCLUDED_GROUP, TargetKind.ALL_USERS)

# The assignment filter platform (Graph `devicePlatformType`) a restriction's filters must have.
FILTER_PLATFORMS: Mapping[RestrictionPlatform, str] = {
    RestrictionPlatform.IOS: "iOS",
    RestrictionPlatform.MAC: "macOS",
    RestrictionPlatform.WINDOWS: "windows10AndLater",
}

SINGLE_PLATFORM_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration"
DEFAULT_PLATFORMS_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration"
LIMIT_TYPE = "#microsoft.graph.deviceEnrollmentLimitConfiguration"
ODATA_TYPES: Mapping[ConfigurationType, str] = {
    ConfigurationType.SINGLE_PLATFORM: SINGLE_PLATFORM_TYPE,
    ConfigurationType.DEFAULT_PLATFORMS: DEFAULT_PLATFORMS_TYPE,
    ConfigurationType.LIMIT: LIMIT_TYPE,
    ConfigurationType.DEFAULT_LIMIT: LIMIT_TYPE,
}
_TYPE_SETTINGS: Mapping[ConfigurationType, frozenset[str]] = {
    ConfigurationType.SINGLE_PLATFORM: frozenset({"platformType", "platformRestriction"}),
    ConfigurationType.DEFAULT_PLATFORMS: frozenset(DEFAULT_RESTRICTION_PROPERTIES.values()),
    ConfigurationType.LIMIT: frozenset({"limit"}),
    ConfigurationType.DEFAULT_LIMIT: frozenset({"limit"}),
}
_EDITABLE = frozenset({"@odata.type", "displayName", "description", "roleScopeTagIds"})
# Graph clients often send back a whole object: its read-only properties are accepted and ignored.
_READ_ONLY = frozenset(
    {"id", "createdDateTime", "lastModifiedDateTime", "version", "deviceEnrollmentConfigurationType", "priority"}
)
DEFAULT_NAME = "All users and all devices"
DEFAULT_DESCRIPTIONS: Mapping[ConfigurationType, str] = {
    ConfigurationType.DEFAULT_PLATFORMS: "The default device platform restriction, applied with the lowest priority "
    "to all users and userless enrollments regardless of group membership.",
    ConfigurationType.DEFAULT_LIMIT: "The default device limit restriction, applied with the lowest priority to all "
    "users regardless of group membership.",
}


@dataclass(frozen=True)
class RestrictionRow:
    id: str
    org_id: str
    configuration_type: ConfigurationType
    platform: RestrictionPlatform | None  # single-platform restrictions only
    display_name: str
    description: str | None
    priority: int
    version: int
    settings: dict[str, Any]
    targets: tuple[AssignmentTarget, ...]
    scope_tag_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


def default_id(org_id: str, kind: ConfigurationType) -> str:
    """The fixed id of a default ("<org id>_DefaultLimit", as Intune names them), so creating it is idempotent."""
    return f"{org_id}_{kind.value[0].upper()}{kind.value[1:]}"


def default_restrictions(org_id: str, now: datetime) -> list[RestrictionRow]:
    """The organisation's two defaults (R-179): every platform allowed, and the default device limit."""
    platforms = {name: PlatformRestriction().to_graph() for name in DEFAULT_RESTRICTION_PROPERTIES.values()}
    return [
        RestrictionRow(
            default_id(org_id, kind),
            org_id,
            kind,
            None,
            DEFAULT_NAME,
            DEFAULT_DESCRIPTIONS[kind],
            DEFAULT_PRIORITY,
            1,
            settings,
            (),
            ("0",),
            now,
            now,
        )
        for kind, settings in (
            (ConfigurationType.DEFAULT_PLATFORMS, platforms),
            (ConfigurationType.DEFAULT_LIMIT, {"limit": DEFAULT_DEVICE_LIMIT}),
        )
    ]


class RestrictionStore(Protocol):
    async def ensure_defaults(self, rows: Iterable[RestrictionRow]) -> None:
        """Insert the default rows that do not exist yet (concurrent callers included)."""

    async def all(self, org_id: str, scope: Scope) -> list[RestrictionRow]: ...

    async def get(self, org_id: str, restriction_id: str) -> RestrictionRow | None: ...

    async def add(self, row: RestrictionRow) -> RestrictionRow:
        """Insert it just above its list's default (`insertion_priority`), atomically; the stored row."""

    async def update(self, row: RestrictionRow) -> None:
        """Everything but the priority."""

    async def delete(self, row: RestrictionRow) -> None:
        """Remove it and close the gap in its priority list, atomically."""

    async def set_priority(self, row: RestrictionRow, priority: int) -> None:
        """Move it within its list (`moved`), atomically, whatever other admins do at the same time."""

    async def unknown_groups(self, org_id: str, group_ids: Iterable[str]) -> set[str]: ...

    async def filter_rules(self, org_id: str, filter_ids: Iterable[str], filter_platform: str) -> dict[str, str]:
        """The rules of those of the filters that exist for `filter_platform` (Graph `devicePlatformType`)."""

    async def policies_for(self, org_id: str, platform: RestrictionPlatform) -> EnrollmentPolicies: ...


class EnrollmentRestrictions:
    def __init__(self, *, store: RestrictionStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._defaults_ensured: set[str] = set()

    async def ensure_defaults(self, org_id: str) -> None:
        """Create the organisation's default restrictions unless they exist (at start-up; idempotent across
        processes), once per organisation for this service."""
        if org_id not in self._defaults_ensured:
            await self._store.ensure_defaults(default_restrictions(org_id, self._clock.now()))
            self._defaults_ensured.add(org_id)

    async def all(self, org_id: str, scope: Scope) -> list[RestrictionRow]:
        await self.ensure_defaults(org_id)
        return await self._store.all(org_id, scope)

    async def get(self, org_id: str, restriction_id: str, scope: Scope) -> RestrictionRow:
        """The policy; one outside `scope` is "not found", so an admin learns nothing of it."""
        await self.ensure_defaults(org_id)
        row = await self._store.get(org_id, restriction_id)
        if row is None or not scope.covers(row.scope_tag_ids):
            raise NotFound(f"device enrollment configuration {restriction_id} not found")
        return row

    async def create(
        self, *, org_id: str, actor: str, body: Mapping[str, Any], tag_ids: tuple[str, ...]
    ) -> RestrictionRow:
        """A new platform or limit restriction, just above the default (R-205, R-208), assigned to nobody yet
        (so without effect, R-197)."""
        await self.ensure_defaults(org_id)
        kind = _creatable_type(body.get("@odata.type"))
        _check_keys(body, kind)
        if "displayName" not in body:
            raise InvalidInput("displayName is required")
        platform = _platform(body.get("platformType")) if kind is ConfigurationType.SINGLE_PLATFORM else None
        if kind is ConfigurationType.LIMIT and "limit" not in body:
            raise InvalidInput("limit is required (1 to 15)")
        now = self._clock.now()
        blank = RestrictionRow(str(uuid.uuid4()), org_id, kind, platform, "", None, 0, 1, {}, (), tag_ids, now, now)
        row = await self._store.add(_with_body(blank, body))
        await self._audited(actor, "createDeviceEnrollmentConfiguration", row, {"after": _summary(row)})
        return row

    async def update(
        self,
        org_id: str,
        restriction_id: str,
        scope: Scope,
        *,
        actor: str,
        body: Mapping[str, Any],
        tag_ids: tuple[str, ...] | None,
    ) -> RestrictionRow:
        """PATCH: the properties given change, the version goes up (R-201)."""
        row = await self.get(org_id, restriction_id, scope)
        if "@odata.type" in body and body["@odata.type"] != ODATA_TYPES[row.configuration_type]:
            raise InvalidInput(f"@odata.type must be {ODATA_TYPES[row.configuration_type]} for this policy")
        _check_keys(body, row.configuration_type, row.priority)
        if "platformType" in body and _platform(body["platformType"]) is not row.platform:
            raise InvalidInput("platformType cannot change; create a restriction for the other platform")
        updated = replace(
            _with_body(row, body),
            version=row.version + 1,
            scope_tag_ids=row.scope_tag_ids if tag_ids is None else tag_ids,
            updated_at=self._clock.now(),
        )
        await self._store.update(updated)
        detail = {"before": _summary(row), "after": _summary(updated)}
        await self._audited(actor, "updateDeviceEnrollmentConfiguration", row, detail)
        return updated

    async def delete(self, org_id: str, restriction_id: str, scope: Scope, *, actor: str) -> None:
        row = await self._not_default(org_id, restriction_id, scope, "deleted")
        await self._store.delete(row)
        await self._audited(actor, "deleteDeviceEnrollmentConfiguration", row, {"before": _summary(row)})

    async def set_priority(
        self, org_id: str, restriction_id: str, scope: Scope, *, actor: str, priority: int
    ) -> RestrictionRow:
        """Move the policy to `priority` in its list (R-209); the default keeps 0 (R-208)."""
        row = await self._not_default(org_id, restriction_id, scope, "reprioritized")
        await self._store.set_priority(row, priority)
        moved_row = await self.get(org_id, restriction_id, scope)
        detail = {"before": {"priority": row.priority}, "after": {"priority": moved_row.priority}}
        await self._audited(actor, "setPriorityDeviceEnrollmentConfiguration", row, detail)
        return moved_row

    async def assign(
        self, org_id: str, restriction_id: str, scope: Scope, *, actor: str, assignments: Any
    ) -> RestrictionRow:
        """Replace the assignments (Graph `enrollmentConfigurationAssignments`). Groups and filters must exist;
        filters only on iOS, macOS and Windows platform restrictions (R-200)."""
        row = await self._not_default(org_id, restriction_id, scope, "assigned")
        targets = parse_targets(assignments, allowed=RESTRICTION_TARGETS)
        filter_ids = {t.filter_id for t in targets if t.filter_id is not None}
        if filter_ids and (row.platform is None or not row.platform.takes_filters):
            kind = "device limit restrictions" if row.platform is None else f"{row.platform.value} restrictions"
            raise InvalidInput(f"assignment filters are not available for {kind} (only iOS, macOS and Windows)")
        missing = await self._store.unknown_groups(org_id, {t.group_id for t in targets if t.group_id})
        if missing:
            raise InvalidInput(f"no such group: {', '.join(sorted(missing))}")
        if filter_ids:
            assert row.platform is not None  # filters were refused above for limits
            filter_platform = FILTER_PLATFORMS[row.platform]
            rules = await self._store.filter_rules(org_id, filter_ids, filter_platform)
            missing = filter_ids - rules.keys()
            if missing:
                raise InvalidInput(f"no {filter_platform} assignment filter: {', '.join(sorted(missing))}")
            for filter_id, rule in sorted(rules.items()):
                _usable_at_enrollment(filter_id, rule, filter_platform)
        updated = replace(row, targets=targets, version=row.version + 1, updated_at=self._clock.now())
        await self._store.update(updated)
        detail = {"targets": [target.to_graph() for target in targets]}
        await self._audited(actor, "assignDeviceEnrollmentConfiguration", row, detail)
        return updated

    async def using_filter(self, org_id: str, filter_id: str) -> list[str]:
        """The names of the restrictions whose assignments use the assignment filter, whatever their scope."""
        rows = await self._store.all(org_id, Scope(everything=True))
        return [row.display_name for row in rows if any(t.filter_id == filter_id for t in row.targets)]

    async def policies_for(self, org_id: str, platform: RestrictionPlatform) -> EnrollmentPolicies:
        """What `muster.domain.enrollment_decision.decide` reads for an enrollment on `platform`."""
        await self.ensure_defaults(org_id)
        return await self._store.policies_for(org_id, platform)

    async def _not_default(self, org_id: str, restriction_id: str, scope: Scope, verb: str) -> RestrictionRow:
        row = await self.get(org_id, restriction_id, scope)
        if row.configuration_type.is_default:
            raise NotAllowed(
                f"the default restriction applies to everyone with the lowest priority: it cannot be {verb}"
            )
        return row

    async def _audited(self, actor: str, activity: str, row: RestrictionRow, detail: Mapping[str, Any]) -> None:
        await self._audit.admin_event(actor=actor, activity=activity, target=row.id, detail=detail)


def _summary(row: RestrictionRow) -> dict[str, Any]:
    return {
        "displayName": row.display_name,
        "priority": row.priority,
        "settings": row.settings,
        "roleScopeTagIds": list(row.scope_tag_ids),
    }


def _creatable_type(odata_type: Any) -> ConfigurationType:
    if odata_type == SINGLE_PLATFORM_TYPE:
        return ConfigurationType.SINGLE_PLATFORM
    if odata_type == LIMIT_TYPE:
        return ConfigurationType.LIMIT
    if odata_type == DEFAULT_PLATFORMS_TYPE:
        raise InvalidInput("the default platform restriction exists already: PATCH it instead")
    raise InvalidInput(f"@odata.type must be {SINGLE_PLATFORM_TYPE} or {LIMIT_TYPE}")


def _check_keys(body: Mapping[str, Any], kind: ConfigurationType, priority: int | None = None) -> None:
    """Only the type's properties; `priority` only unchanged (a whole object sent back), since it moves with
    setPriority."""
    if "priority" in body and body["priority"] != priority:
        raise InvalidInput("priority is changed with the setPriority action")
    unknown = sorted(set(body) - _EDITABLE - _READ_ONLY - _TYPE_SETTINGS[kind])
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} is not a property of {ODATA_TYPES[kind]}")
    declared = body.get("deviceEnrollmentConfigurationType")
    if declared is not None and declared != kind.value:
        raise InvalidInput(f"deviceEnrollmentConfigurationType of this policy is {kind.value}")


def _platform(value: Any) -> RestrictionPlatform:
    try:
        return RestrictionPlatform(value)
    except ValueError:
        names = ", ".join(p.value for p in RestrictionPlatform)
        raise InvalidInput(f"platformType must be one of {names}") from None


def _with_body(row: RestrictionRow, body: Mapping[str, Any]) -> RestrictionRow:
    """`row` with the body's names and settings, each validated."""
    changes: dict[str, Any] = {}
    if "displayName" in body:
        name = body["displayName"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"displayName must be a non-blank text of at most {MAX_NAME_LENGTH} characters")
        changes["display_name"] = name
    if "description" in body:
        description = body["description"]
        if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH):
            raise InvalidInput(f"description must be a text of at most {MAX_DESCRIPTION_LENGTH} characters")
        changes["description"] = description
    changes["settings"] = _settings(row, body)
    return replace(row, **changes)


def _settings(row: RestrictionRow, body: Mapping[str, Any]) -> dict[str, Any]:
    if row.configuration_type.is_limit:
        return {"limit": parse_device_limit(body["limit"])} if "limit" in body else row.settings
    if row.configuration_type is ConfigurationType.SINGLE_PLATFORM:
        assert row.platform is not None
        if "platformRestriction" not in body:
            return row.settings or PlatformRestriction().to_graph()
        base = PlatformRestriction.from_graph(row.settings)
        return parse_platform_restriction(body["platformRestriction"], row.platform, base=base).to_graph()
    settings = dict(row.settings)
    for platform, name in DEFAULT_RESTRICTION_PROPERTIES.items():
        if name in body:
            base = PlatformRestriction.from_graph(settings[name])
            settings[name] = parse_platform_restriction(body[name], platform, base=base).to_graph()
    return settings


def _usable_at_enrollment(filter_id: str, rule: str, filter_platform: str) -> None:
    """Only the properties known before a device enrolls can filter a restriction (003:7201-7222)."""
    try:
        parse_filter(rule, platform=FilterPlatform(filter_platform), usage=FilterUsage.ENROLLMENT)
    except InvalidInput as unusable:
        raise InvalidInput(f"assignment filter {filter_id} cannot be used at enrollment: {unusable.message}") from None
