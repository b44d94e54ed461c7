"""Assignment of a policy to groups, as Graph's `deviceAndAppManagementAssignmentTarget` expresses it.

A policy (an enrollment restriction, terms and conditions, ...) is assigned with targets: groups to include,
groups to exclude, or every user / every device, each include target optionally narrowed by an assignment filter
in include or exclude mode. With no include target the policy applies to nobody (003:7176, 7287). Exclusion wins
over inclusion, as in Intune.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from muster.domain.errors import InvalidInput

MAX_TARGETS = 200


class TargetKind(StrEnum):
    GROUP = "#microsoft.graph.groupAssignmentTarget"
    EXCLUDED_GROUP = "#microsoft.graph.exclusionGroupAssignmentTarget"
    ALL_USERS = "#microsoft.graph.allLicensedUsersAssignmentTarget"
    ALL_DEVICES = "#microsoft.graph.allDevicesAssignmentTarget"


class FilterMode(StrEnum):
    NONE = "none"
    INCLUDE = "include"
    EXCLUDE = "exclude"


@dataclass(frozen=True)
class AssignmentTarget:
    kind: TargetKind
    group_id: str | None = None
    filter_id: str | None = None
    filter_mode: FilterMode = FilterMode.NONE

    def to_graph(self) -> dict[str, Any]:
        found: dict[str, Any] = {"@odata.type": self.kind.value}
        if self.group_id is not None:
            found["groupId"] = self.group_id
        if self.kind is not TargetKind.EXCLUDED_GROUP:
            found["deviceAndAppManagementAssignmentFilterId"] = self.filter_id
            found["deviceAndAppManagementAssignmentFilterType"] = self.filter_mode.value
        return found

    def to_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "groupId": self.group_id,
            "filterId": self.filter_id,
            "filterMode": self.filter_mode.value,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AssignmentTarget:
        return cls(TargetKind(row["kind"]), row.get("groupId"), row.get("filterId"), FilterMode(row["filterMode"]))


def parse_target(body: Any) -> AssignmentTarget:
    """One Graph `target` object; InvalidInput says what is wrong with it."""
    if not isinstance(body, dict):
        raise InvalidInput("target must be an object with an @odata.type")
    try:
        kind = TargetKind(str(body.get("@odata.type")))
    except ValueError:
        allowed = ", ".join(k.value for k in TargetKind)
        raise InvalidInput(f"target @odata.type must be one of {allowed}") from None
    group_id = body.get("groupId")
    if kind in (TargetKind.GROUP, TargetKind.EXCLUDED_GROUP):
        if not isinstance(group_id, str) or not 0 < len(group_id) <= 64:
            raise InvalidInput(f"{kind.value} needs a groupId")
    elif group_id is not None:
        raise InvalidInput(f"{kind.value} takes no groupId")
    filter_id = body.get("deviceAndAppManagementAssignmentFilterId")
    raw_mode = body.get("deviceAndAppManagementAssignmentFilterType") or FilterMode.NONE.value
    try:
        mode = FilterMode(raw_mode)
    except ValueError:
        raise InvalidInput("deviceAndAppManagementAssignmentFilterType must be none, include or exclude") from None
    if filter_id is not None and (not isinstance(filter_id, str) or not 0 < len(filter_id) <= 64):
        raise InvalidInput("deviceAndAppManagementAssignmentFilterId must be a filter id")
    if kind is TargetKind.EXCLUDED_GROUP and (filter_id is not None or mode is not FilterMode.NONE):
        raise InvalidInput("an excluded group takes no assignment filter")
    if (filter_id is None) != (mode is FilterMode.NONE):
        raise InvalidInput("an assignment filter needs both its id and its type (include or exclude)")
    return AssignmentTarget(kind, group_id, filter_id, mode)


def parse_targets(bodies: Any, *, allowed: Iterable[TargetKind] = tuple(TargetKind)) -> tuple[AssignmentTarget, ...]:
    """A list of Graph assignments (`[{"target": {...}}, ...]`), without duplicates, of the allowed kinds."""
    if not isinstance(bodies, list) or len(bodies) > MAX_TARGETS:
        raise InvalidInput(f"assignments must be a list of at most {MAX_TARGETS} items")
    allowed_kinds = set(allowed)
    targets: list[AssignmentTarget] = []
    for body in bodies:
        if not isinstance(body, dict) or "target" not in body:
            raise InvalidInput("each assignment needs a target")
        target = parse_target(body["target"])
        if target.kind not in allowed_kinds:
            raise InvalidInput(f"{target.kind.value} cannot be used for this kind of policy")
        if any(t.kind == target.kind and t.group_id == target.group_id for t in targets):
            raise InvalidInput(f"the same target is assigned twice ({target.group_id or target.kind.value})")
        targets.append(target)
    return tuple(targets)


@dataclass(frozen=True)
class AssignmentMatch:
    """Why a policy applies (or not) to one user and device: the include target that matched and its filter."""

    applies: bool
    target: AssignmentTarget | None = None
    filter_result: bool | None = None  # the filter's verdict on the device, when the matching target had one


NOT_ASSIGNED = AssignmentMatch(False)


def match(
    targets: Sequence[AssignmentTarget],
    *,
    has_user: bool,
    group_ids: frozenset[str],
    filter_matches: Callable[[str], bool],
) -> AssignmentMatch:
    """Whether the policy with `targets` applies to an enrollment by a user (`has_user`) in `group_ids` (the
    user's and the device's groups, nested groups included). `filter_matches(filter_id)` evaluates a filter on the
    enrolling device. Exclusions win; among include targets the first that matches (filter included) decides."""
    if any(t.kind is TargetKind.EXCLUDED_GROUP and t.group_id in group_ids for t in targets):
        return NOT_ASSIGNED
    last_filtered_out: AssignmentMatch = NOT_ASSIGNED
    for target in targets:
        if not _reaches(target, has_user=has_user, group_ids=group_ids):
            continue
        if target.filter_id is None:
            return AssignmentMatch(True, target)
        verdict = filter_matches(target.filter_id)
        keeps = verdict if target.filter_mode is FilterMode.INCLUDE else not verdict
        if keeps:
            return AssignmentMatch(True, target, verdict)
        last_filtered_out = AssignmentMatch(False, target, verdict)
    return last_filtered_out


def _reaches(target: AssignmentTarget, *, has_user: bool, group_ids: frozenset[str]) -> bool:
    match target.kind:
        case TargetKind.GROUP:
            return target.group_id in group_ids
        case TargetKind.ALL_USERS:
            return has_user
        case TargetKind.ALL_DEVICES:
            return True
        case _:
            return False
