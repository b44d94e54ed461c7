"""Intune-style role-based access: permissions, built-in roles, scope tags, and what a signed-in admin may do.

A role is a set of permissions (Intune's `Microsoft.Intune_<Resource>_<Action>` resource actions). A role
assignment gives a role to members (users, groups, API clients) over scope tags: the admin sees and changes only
objects carrying one of those tags. Every object carries at least one tag; an object created without any gets
the built-in "Default" tag (id "0"), as in Intune (003_729e51c15a5a5608.txt:946).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from muster.domain.devices import DeviceAction

DEFAULT_SCOPE_TAG_ID = "0"
DEFAULT_SCOPE_TAG_NAME = "Default"


class Permission(StrEnum):
    MANAGED_DEVICES_READ = "Microsoft.Intune_ManagedDevices_Read"
    MANAGED_DEVICES_UPDATE = "Microsoft.Intune_ManagedDevices_Update"
    MANAGED_DEVICES_DELETE = "Microsoft.Intune_ManagedDevices_Delete"
    REMOTE_TASKS_WIPE = "Microsoft.Intune_RemoteTasks_Wipe"
    REMOTE_TASKS_RETIRE = "Microsoft.Intune_RemoteTasks_Retire"
    REMOTE_TASKS_REMOTE_LOCK = "Microsoft.Intune_RemoteTasks_RemoteLock"
    REMOTE_TASKS_REBOOT_NOW = "Microsoft.Intune_RemoteTasks_RebootNow"
    REMOTE_TASKS_SHUT_DOWN = "Microsoft.Intune_RemoteTasks_ShutDown"
    REMOTE_TASKS_SYNC_DEVICE = "Microsoft.Intune_RemoteTasks_SyncDevice"
    REMOTE_TASKS_SET_DEVICE_NAME = "Microsoft.Intune_RemoteTasks_SetDeviceName"
    REMOTE_TASKS_RESET_PASSCODE = "Microsoft.Intune_RemoteTasks_ResetPasscode"
    REMOTE_TASKS_LOST_MODE = "Microsoft.Intune_RemoteTasks_ManageLostMode"
    REMOTE_TASKS_LOGOUT_SHARED_DEVICE_USER = "Microsoft.Intune_RemoteTasks_LogoutSharedAppleDeviceActiveUser"
    REMOTE_TASKS_DELETE_SHARED_DEVICE_USER = "Microsoft.Intune_RemoteTasks_DeleteUserFromSharedAppleDevice"
    ENROLLMENT_PROGRAM_TOKEN_READ = "Microsoft.Intune_EnrollmentProgramToken_Read"
    ENROLLMENT_PROGRAM_TOKEN_CREATE = "Microsoft.Intune_EnrollmentProgramToken_Create"
    ENROLLMENT_PROGRAM_TOKEN_UPDATE = "Microsoft.Intune_EnrollmentProgramToken_Update"
    ENROLLMENT_PROGRAM_TOKEN_DELETE = "Microsoft.Intune_EnrollmentProgramToken_Delete"
    ENROLLMENT_PROGRAM_TOKEN_SYNC = "Microsoft.Intune_EnrollmentProgramToken_Sync"
    ENROLLMENT_PROFILES_READ = "Microsoft.Intune_EnrollmentProfiles_Read"
    ENROLLMENT_PROFILES_WRITE = "Microsoft.Intune_EnrollmentProfiles_Write"
    DEVICE_ENROLLMENT_MANAGERS_READ = "Microsoft.Intune_DeviceEnrollmentManagers_Read"
    DEVICE_ENROLLMENT_MANAGERS_UPDATE = "Microsoft.Intune_DeviceEnrollmentManagers_Update"
    ORGANIZATION_READ = "Microsoft.Intune_Organization_Read"
    ORGANIZATION_UPDATE = "Microsoft.Intune_Organization_Update"
    USERS_READ = "Microsoft.Directory_Users_Read"
    USERS_WRITE = "Microsoft.Directory_Users_Write"
    GROUPS_READ = "Microsoft.Directory_Groups_Read"
    GROUPS_WRITE = "Microsoft.Directory_Groups_Write"
    ROLES_READ = "Microsoft.Intune_Roles_Read"
    ROLES_WRITE = "Microsoft.Intune_Roles_Write"
    ROLES_ASSIGN = "Microsoft.Intune_Roles_Assign"
    AUDIT_DATA_READ = "Microsoft.Intune_AuditData_Read"
    REPORTS_READ = "Microsoft.Intune_Reports_Read"
    DEVICE_ENROLLMENT_CONFIGURATIONS_READ = "Microsoft.Intune_DeviceEnrollmentConfigurations_Read"
    DEVICE_ENROLLMENT_CONFIGURATIONS_CREATE = "Microsoft.Intune_DeviceEnrollmentConfigurations_Create"
    DEVICE_ENROLLMENT_CONFIGURATIONS_UPDATE = "Microsoft.Intune_DeviceEnrollmentConfigurations_Update"
    DEVICE_ENROLLMENT_CONFIGURATIONS_DELETE = "Microsoft.Intune_DeviceEnrollmentConfigurations_Delete"
    DEVICE_ENROLLMENT_CONFIGURATIONS_ASSIGN = "Microsoft.Intune_DeviceEnrollmentConfigurations_Assign"
    ASSIGNMENT_FILTERS_READ = "Microsoft.Intune_AssignmentFilter_Read"
    ASSIGNMENT_FILTERS_CREATE = "Microsoft.Intune_AssignmentFilter_Create"
    ASSIGNMENT_FILTERS_UPDATE = "Microsoft.Intune_AssignmentFilter_Update"
    ASSIGNMENT_FILTERS_DELETE = "Microsoft.Intune_AssignmentFilter_Delete"
    CORPORATE_DEVICE_IDENTIFIERS_READ = "Microsoft.Intune_CorporateDeviceIdentifiers_Read"
    CORPORATE_DEVICE_IDENTIFIERS_CREATE = "Microsoft.Intune_CorporateDeviceIdentifiers_Create"
    CORPORATE_DEVICE_IDENTIFIERS_UPDATE = "Microsoft.Intune_CorporateDeviceIdentifiers_Update"
    CORPORATE_DEVICE_IDENTIFIERS_DELETE = "Microsoft.Intune_CorporateDeviceIdentifiers_Delete"
    TERMS_AND_CONDITIONS_READ = "Microsoft.Intune_TermsAndConditions_Read"
    TERMS_AND_CONDITIONS_CREATE = "Microsoft.Intune_TermsAndConditions_Create"
    TERMS_AND_CONDITIONS_UPDATE = "Microsoft.Intune_TermsAndConditions_Update"
    TERMS_AND_CONDITIONS_DELETE = "Microsoft.Intune_TermsAndConditions_Delete"
    TERMS_AND_CONDITIONS_ASSIGN = "Microsoft.Intune_TermsAndConditions_Assign"
    DEVICE_CATEGORIES_READ = "Microsoft.Intune_DeviceCategories_Read"
    DEVICE_CATEGORIES_WRITE = "Microsoft.Intune_DeviceCategories_Write"
    API_CLIENTS_READ = "Muster.ApiClients_Read"
    API_CLIENTS_WRITE = "Muster.ApiClients_Write"
    WEBHOOKS_READ = "Muster.Webhooks_Read"
    WEBHOOKS_WRITE = "Muster.Webhooks_Write"


ACTION_PERMISSION = {
    DeviceAction.RETIRE: Permission.REMOTE_TASKS_RETIRE,
    DeviceAction.WIPE: Permission.REMOTE_TASKS_WIPE,
    DeviceAction.REMOTE_LOCK: Permission.REMOTE_TASKS_REMOTE_LOCK,
    DeviceAction.REBOOT_NOW: Permission.REMOTE_TASKS_REBOOT_NOW,
    DeviceAction.SHUT_DOWN: Permission.REMOTE_TASKS_SHUT_DOWN,
    DeviceAction.SYNC_DEVICE: Permission.REMOTE_TASKS_SYNC_DEVICE,
    DeviceAction.SET_DEVICE_NAME: Permission.REMOTE_TASKS_SET_DEVICE_NAME,
    DeviceAction.RESET_PASSCODE: Permission.REMOTE_TASKS_RESET_PASSCODE,
    DeviceAction.ENABLE_LOST_MODE: Permission.REMOTE_TASKS_LOST_MODE,
    DeviceAction.DISABLE_LOST_MODE: Permission.REMOTE_TASKS_LOST_MODE,
    DeviceAction.LOGOUT_SHARED_DEVICE_USER: Permission.REMOTE_TASKS_LOGOUT_SHARED_DEVICE_USER,
    DeviceAction.DELETE_SHARED_DEVICE_USER: Permission.REMOTE_TASKS_DELETE_SHARED_DEVICE_USER,
}

READ_PERMISSIONS = frozenset(p for p in Permission if p.value.endswith("_Read"))
REMOTE_TASKS = frozenset(ACTION_PERMISSION.values())


class BuiltInRole(StrEnum):
    INTUNE_ADMINISTRATOR = "Intune Administrator"
    POLICY_AND_PROFILE_MANAGER = "Policy and Profile Manager"
    HELP_DESK_OPERATOR = "Help Desk Operator"
    READ_ONLY_OPERATOR = "Read Only Operator"
    ENROLLMENT_MANAGER_ADMINISTRATOR = "Device Enrollment Manager Administrator"


BUILT_IN_ROLE_PERMISSIONS: dict[BuiltInRole, frozenset[Permission]] = {
    BuiltInRole.INTUNE_ADMINISTRATOR: frozenset(Permission),
    BuiltInRole.POLICY_AND_PROFILE_MANAGER: READ_PERMISSIONS - {Permission.AUDIT_DATA_READ}
    | {
        Permission.ENROLLMENT_PROFILES_WRITE,
        Permission.ENROLLMENT_PROGRAM_TOKEN_CREATE,
        Permission.ENROLLMENT_PROGRAM_TOKEN_UPDATE,
        Permission.ENROLLMENT_PROGRAM_TOKEN_DELETE,
        Permission.ENROLLMENT_PROGRAM_TOKEN_SYNC,
        Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_CREATE,
        Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_UPDATE,
        Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_DELETE,
        Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_ASSIGN,
        Permission.ASSIGNMENT_FILTERS_CREATE,
        Permission.ASSIGNMENT_FILTERS_UPDATE,
        Permission.ASSIGNMENT_FILTERS_DELETE,
        Permission.CORPORATE_DEVICE_IDENTIFIERS_CREATE,
        Permission.CORPORATE_DEVICE_IDENTIFIERS_UPDATE,
        Permission.CORPORATE_DEVICE_IDENTIFIERS_DELETE,
        Permission.TERMS_AND_CONDITIONS_CREATE,
        Permission.TERMS_AND_CONDITIONS_UPDATE,
        Permission.TERMS_AND_CONDITIONS_DELETE,
        Permission.TERMS_AND_CONDITIONS_ASSIGN,
    },
    BuiltInRole.HELP_DESK_OPERATOR: frozenset(
        {
            Permission.MANAGED_DEVICES_READ,
            Permission.MANAGED_DEVICES_UPDATE,
            Permission.USERS_READ,
            Permission.GROUPS_READ,
            Permission.ENROLLMENT_PROFILES_READ,
            Permission.ENROLLMENT_PROGRAM_TOKEN_READ,
            Permission.ORGANIZATION_READ,
        }
    )
    | REMOTE_TASKS,
    BuiltInRole.READ_ONLY_OPERATOR: READ_PERMISSIONS,
    BuiltInRole.ENROLLMENT_MANAGER_ADMINISTRATOR: frozenset(
        {
            Permission.DEVICE_ENROLLMENT_MANAGERS_READ,
            Permission.DEVICE_ENROLLMENT_MANAGERS_UPDATE,
            Permission.USERS_READ,
        }
    ),
}


@dataclass(frozen=True)
class Scope:
    """The objects a permission reaches: every object (`everything`), or those carrying one of `tag_ids`."""

    everything: bool = False
    tag_ids: frozenset[str] = frozenset()

    def covers(self, object_tag_ids: Iterable[str]) -> bool:
        return self.everything or not self.tag_ids.isdisjoint(object_tags(object_tag_ids))

    def includes(self, tag_ids: Iterable[str]) -> bool:
        """Whether every one of `tag_ids` is within the scope (an admin may only hand out its own tags)."""
        return self.everything or set(object_tags(tag_ids)) <= self.tag_ids

    def __or__(self, other: Scope) -> Scope:
        return Scope(self.everything or other.everything, self.tag_ids | other.tag_ids)


NOTHING = Scope()


class TaggedObject(StrEnum):
    """The kinds of object that carry scope tags (each kind's table holds them, see `muster.store.scope_tags`)."""

    MANAGED_DEVICE = "managedDevice"
    DEP_TOKEN = "depOnboardingSetting"
    ADE_PROFILE = "depEnrollmentProfile"
    ENROLLMENT_CONFIGURATION = "deviceEnrollmentConfiguration"
    ASSIGNMENT_FILTER = "assignmentFilter"
    DEVICE_CATEGORY = "deviceCategory"
    TERMS_AND_CONDITIONS = "termsAndConditions"
    ENROLLMENT_TYPE_PROFILE = "appleUserInitiatedEnrollmentProfile"


@dataclass(frozen=True)
class Grant:
    """One role assignment as it applies to a principal: its permissions over its scope tags and scope groups.

    Scope tags decide which objects the admin sees; scope groups (Intune "Scope (Groups)") which users and devices
    it may manage. No scope groups: every user and device.
    """

    permissions: frozenset[Permission]
    scope: Scope
    scope_group_ids: frozenset[str] = frozenset()

    def reaches(self, object_tag_ids: Iterable[str], object_group_ids: frozenset[str]) -> bool:
        """Whether this one assignment lets its permissions act on an object with these tags and group memberships
        (a device's: its own groups and its primary user's, nested groups included)."""
        in_groups = not self.scope_group_ids or not self.scope_group_ids.isdisjoint(object_group_ids)
        return in_groups and self.scope.covers(object_tag_ids)


@dataclass(frozen=True)
class Principal:
    """A signed-in admin (a directory user, an API client or a bootstrap API token) and its grants."""

    id: str
    kind: str  # "user" | "client" | "apiToken"
    display_name: str
    org_id: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    def can(self, permission: Permission) -> bool:
        return any(permission in grant.permissions for grant in self.grants)

    def scope(self, permission: Permission) -> Scope:
        """Where the principal holds `permission`: the union over the assignments granting it."""
        scope = NOTHING
        for grant in self.grants:
            if permission in grant.permissions:
                scope = scope | grant.scope
        return scope

    def reaches(self, permission: Permission, object_tag_ids: Iterable[str], object_group_ids: frozenset[str]) -> bool:
        """Whether the principal may use `permission` on an object: ONE assignment holding it must match both the
        object's tags and its groups (tags from one assignment and groups from another do not combine)."""
        tags = object_tags(object_tag_ids)
        return any(permission in g.permissions and g.reaches(tags, object_group_ids) for g in self.grants)

    def needs_scope_groups(self, permission: Permission, object_tag_ids: Iterable[str]) -> bool:
        """Whether the object's group memberships can change `reaches` (so they are worth looking up): some
        assignment holding `permission` covers the object's tags, and each one that does has scope groups."""
        tags = object_tags(object_tag_ids)
        covering = [g for g in self.grants if permission in g.permissions and g.scope.covers(tags)]
        return bool(covering) and all(g.scope_group_ids for g in covering)


def parse_permissions(values: Iterable[str]) -> frozenset[Permission]:
    """Permissions from their Intune resource-action names; ValueError names the first unknown one."""
    known = {p.value: p for p in Permission}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown permission {unknown[0]!r}")
    return frozenset(known[v] for v in values)


def grant_refusal(admin: Principal, permissions: Iterable[Permission], tag_ids: Iterable[str] | None) -> str | None:
    """Why `admin` may not hand out `permissions` over `tag_ids` (None: every tag), or None when it may.

    No privilege escalation: an admin grants only permissions it holds, over tags within its own scope for each.
    """
    wanted = None if tag_ids is None else object_tags(tag_ids)
    for permission in sorted(permissions):
        if not admin.can(permission):
            return f"you cannot grant {permission.value}: you do not hold it yourself"
        scope = admin.scope(permission)
        if wanted is None and not scope.everything:
            return f"you cannot grant {permission.value} over all scope tags: you hold it only over some"
        if wanted is not None and not scope.includes(wanted):
            outside = sorted(set(wanted) - scope.tag_ids)
            return (
                f"you cannot grant {permission.value} over scope tags {', '.join(outside)}: they are outside your scope"
            )
    return None


def object_tags(tag_ids: Iterable[str] | None) -> tuple[str, ...]:
    """The tags an object is stored with: the given ones, or Default when none were given."""
    tags = tuple(dict.fromkeys(tag_ids or ()))
    return tags or (DEFAULT_SCOPE_TAG_ID,)


@dataclass(frozen=True)
class TokenSubject:
    """Who a verified access token speaks for: a directory user or an API client of an organisation."""

    org_id: str
    kind: str  # "user" | "client"
    subject_id: str
    display_name: str


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> TokenSubject | None:
        """The token's subject, or None when the token is not valid (any reason: signature, expiry, revoked)."""
