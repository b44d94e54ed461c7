"""The directory: users, groups, assigned and dynamic memberships, nested groups.

Rows cross this layer as dicts keyed by column name (`user_principal_name`, `membership_rule`...). A dynamic
group's members are computed into the same membership table as assigned ones, so "which groups is X in" is one
query whatever the kind of group: when the group is created or its rule changes (every user or device), when a
user is created or changed (that user), and by a periodic job for devices, whose properties change on check-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from muster.domain.clock import Clock
from muster.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from muster.domain.membership_rules import Rule, evaluate, parse_rule, properties_of
from muster.protocols.odata import QueryOptions
from muster.services.audit import AuditSink

USER_FIELDS = (
    "user_principal_name",
    "display_name",
    "given_name",
    "surname",
    "mail",
    "account_enabled",
    "department",
    "job_title",
    "external_id",
    "scim_profile",
)
GROUP_FIELDS = ("display_name", "description", "mail_nickname", "external_id", "membership_type", "membership_rule")
_AUDITED_USER_FIELDS = USER_FIELDS[:-1]  # not the SCIM document: the columns hold what matters
ASSIGNED, DYNAMIC = "assigned", "dynamic"

# Rule property (lower-cased) -> row key, for users and for devices. Devices may not have every property yet
# (enrollment profile names): a missing one reads as null. A device's category is read by its id, then named.
USER_RULE_PROPERTIES = {
    "user.userprincipalname": "user_principal_name",
    "user.displayname": "display_name",
    "user.givenname": "given_name",
    "user.surname": "surname",
    "user.mail": "mail",
    "user.accountenabled": "account_enabled",
    "user.department": "department",
    "user.jobtitle": "job_title",
}
DEVICE_RULE_PROPERTIES = {
    "device.deviceid": "id",
    "device.devicename": "device_name",
    "device.model": "model_name",
    "device.operatingsystem": "operating_system",
    "device.osversion": "os_version",
    "device.serialnumber": "serial_number",
    "device.manageddeviceownertype": "owner_type",
    "device.deviceownership": "owner_type",  # as Intune filters name it, Corporate/Personal
    "device.enrollmentprofilename": "enrollment_profile_name",
    "device.devicecategory": "device_category_id",
}

_OWNERSHIP = {"company": "Corporate", "personal": "Personal"}


class DirectoryStore(Protocol):
    async def page(
        self, kind: str, org_id: str, options: QueryOptions
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """`kind` is "users" or "groups"."""

    async def get(self, kind: str, org_id: str, object_id: str) -> dict[str, Any] | None: ...

    async def user_by_upn(self, org_id: str, upn: str) -> dict[str, Any] | None: ...

    async def group_by_name(self, org_id: str, display_name: str) -> dict[str, Any] | None: ...

    async def save_user(self, row: Mapping[str, Any], *, dynamic_groups: Mapping[str, bool]) -> None:
        """Insert or update (by id) a user and set its membership of each dynamic group, in one transaction."""

    async def save_group(self, row: Mapping[str, Any], *, members: Iterable[tuple[str, str]] | None) -> None:
        """Insert or update (by id) a group; `members` (id, type), when given, replaces its members."""

    async def delete(self, kind: str, org_id: str, object_id: str) -> bool: ...

    async def add_member(self, group_id: str, member_id: str, member_type: str) -> bool:
        """False when it was a member already."""

    async def remove_member(self, group_id: str, member_id: str) -> bool: ...

    async def set_members(self, group_id: str, member_type: str, member_ids: Sequence[str]) -> None:
        """Make these the group's members of this type, adding and removing only the difference."""

    async def members(self, org_id: str, group_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Members of these groups, each row with `member_type` and the member's own columns."""

    async def group_ids_of(self, org_id: str, member_id: str, *, transitive: bool) -> frozenset[str]: ...

    async def dynamic_groups(self, org_id: str | None) -> list[dict[str, Any]]: ...

    async def candidates(self, kind: str, org_id: str) -> list[dict[str, Any]]:
        """Every user or group of the organisation, or its devices with the columns rules read."""

    async def object_type(self, org_id: str, object_id: str) -> str | None:
        """ "user", "device" or "group" for an object of this organisation."""


@dataclass(frozen=True)
class _DynamicGroup:
    id: str
    kind: str  # "user" or "device"
    rule: Rule


def rule_target(rule: Rule) -> str:
    """Whether a rule selects users or devices; a rule reading both is refused, as Entra ID does."""
    objects = {name.split(".", 1)[0] for name in properties_of(rule)}
    if len(objects) != 1:
        raise InvalidInput("a membership rule reads either user. or device. properties, not both")
    return objects.pop()


class CategoryNames(Protocol):
    async def names(self, org_id: str) -> dict[str, str]:
        """Each device category's id and display name (seed-catalog-A CAT-03: rules read the name)."""


def rule_properties(
    kind: str, row: Mapping[str, Any], category_names: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The properties a rule reads on a user or device row; a device's category by its name in `category_names`
    (id -> display name), null when the device has none ("Unassigned")."""
    mapping = USER_RULE_PROPERTIES if kind == "user" else DEVICE_RULE_PROPERTIES
    properties = {name: row.get(column) for name, column in mapping.items()}
    if kind == "device":
        properties["device.deviceownership"] = _OWNERSHIP.get(str(row.get("owner_type")))
        category_id = row.get("device_category_id")
        properties["device.devicecategory"] = (category_names or {}).get(category_id) if category_id else None
    return properties


class Directory:
    def __init__(self, *, store: DirectoryStore, categories: CategoryNames, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._categories = categories
        self._audit = audit
        self._clock = clock

    # --- reading ----------------------------------------------------------------------------------------

    async def page(
        self, kind: str, org_id: str, options: QueryOptions
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        return await self._store.page(kind, org_id, options)

    async def user(self, org_id: str, id_or_upn: str, *, by_upn: bool = True) -> dict[str, Any]:
        row = await self._store.get("users", org_id, id_or_upn)
        if row is None and by_upn and "@" in id_or_upn:
            row = await self._store.user_by_upn(org_id, id_or_upn)
        if row is None:
            raise NotFound(f"user {id_or_upn} not found")
        return row

    async def user_by_upn(self, org_id: str, upn: str) -> dict[str, Any] | None:
        return await self._store.user_by_upn(org_id, upn)

    async def everyone(self, kind: str, org_id: str) -> list[dict[str, Any]]:
        """Every "user" or "group" of the organisation (for searches the database cannot answer)."""
        return await self._store.candidates(kind, org_id)

    async def group(self, org_id: str, group_id: str) -> dict[str, Any]:
        row = await self._store.get("groups", org_id, group_id)
        if row is None:
            raise NotFound(f"group {group_id} not found")
        return row

    async def group_by_name(self, org_id: str, display_name: str) -> dict[str, Any] | None:
        return await self._store.group_by_name(org_id, display_name)

    async def members(self, org_id: str, group_id: str) -> list[dict[str, Any]]:
        await self.group(org_id, group_id)
        return await self._store.members(org_id, [group_id])

    async def transitive_members(self, org_id: str, group_id: str) -> list[dict[str, Any]]:
        """Members of the group and of its nested groups, each once (nested groups themselves included)."""
        await self.group(org_id, group_id)
        seen_groups, frontier = {group_id}, [group_id]
        found: dict[str, dict[str, Any]] = {}
        while frontier:
            rows = await self._store.members(org_id, frontier)
            frontier = []
            for row in rows:
                found.setdefault(row["id"], row)
                if row["member_type"] == "group" and row["id"] not in seen_groups:
                    seen_groups.add(row["id"])
                    frontier.append(row["id"])
        return list(found.values())

    async def member_of(self, org_id: str, member_id: str, *, transitive: bool = False) -> list[dict[str, Any]]:
        ids = await self._store.group_ids_of(org_id, member_id, transitive=transitive)
        groups = [await self._store.get("groups", org_id, group_id) for group_id in sorted(ids)]
        return [group for group in groups if group is not None]

    async def group_ids_of(self, org_id: str, member_id: str) -> frozenset[str]:
        """Every group the user, device or group is in, directly or through nested groups."""
        return await self._store.group_ids_of(org_id, member_id, transitive=True)

    # --- users ------------------------------------------------------------------------------------------

    async def create_user(self, org_id: str, fields: Mapping[str, Any], *, actor: str, source: str) -> dict[str, Any]:
        upn = str(fields.get("user_principal_name") or "").strip()
        if not upn:  # Graph asks for name@domain; SCIM's userName may be any unique string (RFC 7643 §4.1.1)
            raise InvalidInput("userPrincipalName (SCIM userName) is required")
        if await self._store.user_by_upn(org_id, upn) is not None:
            raise Conflict(f"a user with userPrincipalName {upn} already exists")
        now = self._clock.now()
        row = {"account_enabled": True, **_only(fields, USER_FIELDS)}
        row |= {"id": str(uuid.uuid4()), "org_id": org_id, "source": source, "created_at": now, "updated_at": now}
        await self._store.save_user(row, dynamic_groups=(await self.user_rules(org_id))(row))
        await self._audit.admin_event(
            actor=actor, activity="createUser", target=row["id"], detail=_only(row, _AUDITED_USER_FIELDS)
        )
        return row

    async def update_user(self, org_id: str, user_id: str, changes: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        before = await self.user(org_id, user_id)
        changes = _only(changes, USER_FIELDS)
        upn = changes.get("user_principal_name")
        if upn is not None and upn.lower() != before["user_principal_name"].lower():
            if not upn.strip():
                raise InvalidInput("userPrincipalName (SCIM userName) may not be empty")
            if await self._store.user_by_upn(org_id, upn) is not None:
                raise Conflict(f"a user with userPrincipalName {upn} already exists")
        row = {**before, **changes, "updated_at": self._clock.now()}
        await self._store.save_user(row, dynamic_groups=(await self.user_rules(org_id))(row))
        await self._audit.admin_event(
            actor=actor,
            activity="updateUser",
            target=user_id,
            detail={
                "before": {k: before.get(k) for k in changes if k in _AUDITED_USER_FIELDS},
                "after": _only(changes, _AUDITED_USER_FIELDS),
            },
        )
        return row

    async def delete_user(self, org_id: str, user_id: str, *, actor: str) -> None:
        """Removes the user and its memberships; devices keep their user principal name as history."""
        row = await self.user(org_id, user_id)
        await self._store.delete("users", org_id, row["id"])
        await self._audit.admin_event(actor=actor, activity="deleteUser", target=row["id"], detail={})

    async def user_rules(self, org_id: str) -> Callable[[Mapping[str, Any]], dict[str, bool]]:
        """A function telling, for a user row, which dynamic user groups of the organisation it belongs in."""
        groups = [group for group in await self._dynamic_groups(org_id) if group.kind == "user"]

        def memberships(row: Mapping[str, Any]) -> dict[str, bool]:
            properties = rule_properties("user", row)
            return {group.id: evaluate(group.rule, properties) for group in groups}

        return memberships

    # --- groups -----------------------------------------------------------------------------------------

    async def create_group(
        self,
        org_id: str,
        fields: Mapping[str, Any],
        *,
        actor: str,
        source: str,
        members: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A new group; `members` (directory object ids) for an assigned group, in the same transaction."""
        if not fields.get("display_name"):
            raise InvalidInput("displayName is required")
        now = self._clock.now()
        row = {"membership_type": ASSIGNED, **_only(fields, GROUP_FIELDS)}
        row |= {"id": str(uuid.uuid4()), "org_id": org_id, "source": source, "created_at": now, "updated_at": now}
        computed = await self._computed_members(org_id, row)
        chosen = await self._assigned_members(org_id, row, members) if members else []
        await self._store.save_group(row, members=computed if computed is not None else chosen)
        await self._audit.admin_event(
            actor=actor, activity="createGroup", target=row["id"], detail=_only(row, GROUP_FIELDS)
        )
        return row

    async def update_group(
        self,
        org_id: str,
        group_id: str,
        changes: Mapping[str, Any],
        *,
        actor: str,
        members: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Change a group; `members`, when given, replaces the members of an assigned group."""
        before = await self.group(org_id, group_id)
        changes = _only(changes, GROUP_FIELDS)
        row = {**before, **changes, "updated_at": self._clock.now()}
        if not row.get("display_name"):
            raise InvalidInput("displayName may not be empty")
        if row["membership_type"] == ASSIGNED and "membership_rule" not in changes:
            row["membership_rule"] = None  # the rule of a group turned assigned goes with its dynamic membership
        rule_changed = any(row.get(k) != before.get(k) for k in ("membership_type", "membership_rule"))
        computed = await self._computed_members(org_id, row) if rule_changed else None
        if members is not None:
            computed = await self._assigned_members(org_id, row, members)
        elif rule_changed and computed is None:  # dynamic -> assigned: computed members stay, as assigned ones
            computed = [(r["id"], r["member_type"]) for r in await self._store.members(org_id, [group_id])]
        await self._store.save_group(row, members=computed)
        await self._audit.admin_event(
            actor=actor,
            activity="updateGroup",
            target=group_id,
            detail={"before": {k: before.get(k) for k in changes}, "after": changes, "members": members},
        )
        return row

    async def _assigned_members(
        self, org_id: str, group: Mapping[str, Any], member_ids: Sequence[str]
    ) -> list[tuple[str, str]]:
        """The (id, type) of members chosen by hand, checked: existing objects, no dynamic group, no cycle."""
        if group["membership_type"] == DYNAMIC:
            raise NotAllowed(
                f"group {group['display_name']} has dynamic membership: its members come from its rule "
                "and cannot be added by hand"
            )
        chosen: list[tuple[str, str]] = []
        for member_id in dict.fromkeys(member_ids):
            member_type = await self._store.object_type(org_id, member_id)
            if member_type is None:
                raise NotFound(f"directory object {member_id} not found")
            if member_type == "group" and (
                member_id == group["id"] or member_id in await self.group_ids_of(org_id, group["id"])
            ):
                raise Conflict(f"adding group {member_id} would make a membership cycle")
            chosen.append((member_id, member_type))
        return chosen

    async def delete_group(self, org_id: str, group_id: str, *, actor: str) -> None:
        await self.group(org_id, group_id)
        await self._store.delete("groups", org_id, group_id)
        await self._audit.admin_event(actor=actor, activity="deleteGroup", target=group_id, detail={})

    async def add_member(self, org_id: str, group_id: str, member_id: str, *, actor: str) -> None:
        group = await self.group(org_id, group_id)
        [(_, member_type)] = await self._assigned_members(org_id, group, [member_id])
        if not await self._store.add_member(group_id, member_id, member_type):
            raise Conflict(f"{member_id} is already a member of group {group_id}")
        await self._audit.admin_event(actor=actor, activity="addMember", target=group_id, detail={"member": member_id})

    async def remove_member(self, org_id: str, group_id: str, member_id: str, *, actor: str) -> None:
        group = await self.group(org_id, group_id)
        if group["membership_type"] == DYNAMIC:
            raise NotAllowed(f"group {group['display_name']} has dynamic membership: change its rule instead")
        if not await self._store.remove_member(group_id, member_id):
            raise NotFound(f"{member_id} is not a member of group {group_id}")
        await self._audit.admin_event(
            actor=actor, activity="removeMember", target=group_id, detail={"member": member_id}
        )

    async def refresh_device_groups(self) -> None:
        """The periodic job: recompute every dynamic device group (device properties change on check-in), with one
        pass over each organisation's devices, writing only the memberships that changed."""
        by_org: dict[str, list[_DynamicGroup]] = {}
        for row in await self._store.dynamic_groups(None):
            group = _compile(row)
            if group.kind == "device":
                by_org.setdefault(row["org_id"], []).append(group)
        for org_id, groups in by_org.items():
            rows = await self._store.candidates("device", org_id)
            names = await self._categories.names(org_id)
            devices = [(row["id"], rule_properties("device", row, names)) for row in rows]
            for group in groups:
                matching = [device_id for device_id, properties in devices if evaluate(group.rule, properties)]
                await self._store.set_members(group.id, "device", matching)

    async def _computed_members(self, org_id: str, row: Mapping[str, Any]) -> list[tuple[str, str]] | None:
        """The members a dynamic group's rule selects now (None for an assigned group); checks the rule."""
        if row["membership_type"] not in (ASSIGNED, DYNAMIC):
            raise InvalidInput(f"unknown membership type {row['membership_type']!r}")
        if row["membership_type"] == ASSIGNED:
            if row.get("membership_rule"):
                raise InvalidInput('membershipRule needs groupTypes ["DynamicMembership"]')
            return None
        if not row.get("membership_rule"):
            raise InvalidInput("a dynamic group needs a membershipRule")
        group = _compile(row)
        unknown = sorted(properties_of(group.rule) - set(USER_RULE_PROPERTIES) - set(DEVICE_RULE_PROPERTIES))
        if unknown:  # a misspelt property would silently match nothing
            raise InvalidInput(f"membership rule: unknown property {unknown[0]!r}; see docs/directory.md")
        return await self._matching(org_id, group)

    async def _matching(self, org_id: str, group: _DynamicGroup) -> list[tuple[str, str]]:
        candidates = await self._store.candidates(group.kind, org_id)
        names = await self._categories.names(org_id) if group.kind == "device" else {}
        return [
            (row["id"], group.kind)
            for row in candidates
            if evaluate(group.rule, rule_properties(group.kind, row, names))
        ]

    async def _dynamic_groups(self, org_id: str) -> list[_DynamicGroup]:
        return [_compile(row) for row in await self._store.dynamic_groups(org_id)]


def _compile(row: Mapping[str, Any]) -> _DynamicGroup:
    rule = parse_rule(row["membership_rule"] or "")
    return _DynamicGroup(row["id"], rule_target(rule), rule)


def _only(fields: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name in allowed}
