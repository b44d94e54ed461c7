"""Admin use cases on managed devices: reading them and the device actions (Intune's names).

Each action becomes one Apple MDM command queued for the device channel; retire and wipe also move the
device to a pending state that the device's acknowledgement completes (`services.inventory`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from muster.domain.clock import Clock
from muster.domain.devices import (
    PENDING_STATE,
    SHARED_DEVICE_ACTIONS,
    DeviceAction,
    ManagementState,
    action_allowed,
)
from muster.domain.enrollment_decision import Ownership
from muster.domain.errors import InvalidInput, NotAllowed, NotFound
from muster.domain.rbac import Permission, Principal
from muster.pki.secretbox import SecretBox
from muster.protocols.apple import commands as apple
from muster.protocols.apple.checkin import EnrollmentKind
from muster.protocols.apple.commands import USER_ENROLLMENT_FORBIDDEN
from muster.services.audit import AuditSink
from muster.services.mdm import UNLOCK_PURPOSE
from muster.services.queueing import CommandQueue, inventory_commands

MAX_BULK_DEVICES = 100_000
MAX_USER_PRINCIPAL_NAME = 320
OUTSIDE_SCOPE_GROUPS = (
    "the device is outside the scope groups of your role assignments for {permission}: neither it nor its primary"
    " user is a member of a scope group of an assignment that grants it over the device's scope tags"
)


@dataclass
class ActionOutcome:
    """Per device: the queued command's UUID, or why the action was refused."""

    queued: dict[str, str]
    refused: dict[str, str]


@dataclass(frozen=True)
class ActionTarget:
    """What an action needs to know about a device."""

    device_id: str
    org_id: str
    enrollment_id: str | None
    enrollment_kind: str | None
    state: ManagementState
    operating_system: str | None
    is_supervised: bool | None
    unlock_token_encrypted: bytes | None
    is_multi_user: bool | None = None  # a Shared iPad, as its DeviceInformation reported
    personal: bool = False  # personally owned (OWN-06: managed apps only in its inventory)


class DeviceStore(Protocol):
    async def action_targets(self, org_id: str, device_ids: Sequence[str]) -> list[ActionTarget]: ...

    async def set_states(self, device_ids: Sequence[str], state: ManagementState, now: datetime) -> None: ...

    async def set_ownership(self, org_id: str, device_id: str, owner: Ownership) -> str | None:
        """Record the device's ownership; a device becoming personal loses its app inventory and phone number.
        Returns the `owner_type` it had (None: no such device)."""
        ...

    async def tags_of(self, device_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each device's scope tags (none: no such device)."""
        ...

    async def scope_group_memberships(self, org_id: str, device_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """For each existing device, every group (nested groups included) that it or its primary user, the directory
        user whose UPN is the device's `userPrincipalName`, belongs to."""
        ...


class DeviceActions:
    def __init__(
        self,
        *,
        store: DeviceStore,
        queue: CommandQueue,
        secrets: SecretBox,
        audit: AuditSink,
        clock: Clock,
        profile_identifier: str,
    ) -> None:
        self._store = store
        self._queue = queue
        self._secrets = secrets
        self._audit = audit
        self._clock = clock
        self._profile_identifier = profile_identifier

    async def set_ownership(self, *, org_id: str, device_id: str, owner: str, actor: str) -> None:
        """OWN-05 (003_729e51c15a5a5608.txt:1099-1105): the admin says who owns the device. OWN-06 (:1109): a device
        changed from corporate to personal loses the app inventory and the phone number collected so far (Intune
        takes up to 7 days; Muster does it at once); its next inventory asks for managed apps only."""
        try:
            wanted = Ownership(owner)
        except ValueError:
            raise InvalidInput("managedDeviceOwnerType must be company or personal") from None
        before = await self._store.set_ownership(org_id, device_id, wanted)
        if before is None:
            raise NotFound(f"managed device {device_id} not found")
        if before != wanted.value:
            await self._audit.admin_event(
                actor=actor,
                activity="setManagedDeviceOwnerType",
                target=device_id,
                detail={"from": before, "to": wanted.value},
            )

    async def outside_scope_groups(
        self, admin: Principal, permission: Permission, device_ids: Sequence[str]
    ) -> set[str]:
        """The devices among these, already within the admin's scope tags for `permission`, that no single
        assignment holding it reaches: each one covering the device's tags has scope groups, and neither the
        device nor its primary user is in any of them. Memberships are looked up only for such devices."""
        if not any(permission in g.permissions and g.scope_group_ids for g in admin.grants):
            return set()
        tags = await self._store.tags_of(device_ids)
        # A device without tags does not exist: the action itself says so.
        doubtful = [d for d in dict.fromkeys(device_ids) if tags[d] and admin.needs_scope_groups(permission, tags[d])]
        if not doubtful:
            return set()
        groups = await self._store.scope_group_memberships(admin.org_id, doubtful)
        return {d for d in doubtful if not admin.reaches(permission, tags[d], groups.get(d, frozenset()))}

    async def perform(
        self, *, org_id: str, device_id: str, action: str, parameters: Mapping[str, Any], actor: str
    ) -> str:
        """Run one action on one device; returns the queued command's UUID."""
        outcome = await self.perform_many(
            org_id=org_id,
            device_ids=[device_id],
            action=action,
            parameters=parameters,
            actor=actor,
            strict=True,
        )
        return outcome.queued[device_id]

    async def perform_many(
        self,
        *,
        org_id: str,
        device_ids: Sequence[str],
        action: str,
        parameters: Mapping[str, Any],
        actor: str,
        strict: bool = False,
    ) -> ActionOutcome:
        """Run one action on many devices with one command where the command is the same for all.

        With `strict`, the first refusal raises instead of being reported in the outcome.
        """
        kind = _action(action)
        if not device_ids:
            raise InvalidInput("deviceIds must name at least one device")
        if len(device_ids) > MAX_BULK_DEVICES:
            raise InvalidInput(f"at most {MAX_BULK_DEVICES} devices per call")
        targets = {t.device_id: t for t in await self._store.action_targets(org_id, list(dict.fromkeys(device_ids)))}
        outcome = ActionOutcome(queued={}, refused={})
        ready: list[ActionTarget] = []
        for device_id in dict.fromkeys(device_ids):
            target = targets.get(device_id)
            refusal = _refusal(kind, target)
            if refusal is not None:
                if strict:
                    raise (NotFound(refusal) if target is None else NotAllowed(refusal))
                outcome.refused[device_id] = refusal
            else:
                assert target is not None
                ready.append(target)
        if kind is DeviceAction.RESET_PASSCODE:
            for target in ready:  # each device has its own unlock token
                outcome.queued[target.device_id] = await self._enqueue(kind, parameters, [target], actor)
        elif ready:
            command_uuid = await self._enqueue(kind, parameters, ready, actor)
            outcome.queued.update(dict.fromkeys((t.device_id for t in ready), command_uuid))
        if kind in PENDING_STATE and ready:
            await self._store.set_states([t.device_id for t in ready], PENDING_STATE[kind], self._clock.now())
        await self._audit.admin_event(
            actor=actor,
            activity=kind.value,
            target=",".join(t.device_id for t in ready[:20]),
            detail={"devices": len(ready), "refused": len(outcome.refused), "parameters": dict(parameters)},
        )
        return outcome

    async def _enqueue(
        self, kind: DeviceAction, parameters: Mapping[str, Any], targets: list[ActionTarget], actor: str
    ) -> str:
        enrollment_ids = [t.enrollment_id for t in targets if t.enrollment_id]
        org_id = targets[0].org_id
        if kind in SHARED_DEVICE_ACTIONS:
            # The user list is refreshed after the change, so the admin sees what became of it.
            command_uuid = await self._queue.enqueue(
                self._command(kind, parameters, targets[0]),
                org_id=org_id,
                enrollment_ids=enrollment_ids,
                created_by=actor,
                action=kind.value,
            )
            await self._queue.enqueue(
                apple.user_list(), org_id=org_id, enrollment_ids=enrollment_ids, created_by=actor, action=kind.value
            )
            return command_uuid
        if kind is DeviceAction.SYNC_DEVICE:
            # Intune's sync asks the device to check in; fresh inventory is what the admin expects to see, and
            # personal devices report managed apps only: one batch of commands per kind of device.
            batches: dict[tuple[str, bool], list[str]] = {}
            for t in targets:
                if t.enrollment_id:
                    batches.setdefault((t.enrollment_kind or "DEVICE", t.personal), []).append(t.enrollment_id)
            uuids = [
                await self._queue.enqueue(c, org_id=org_id, enrollment_ids=ids, created_by=actor, action=kind.value)
                for (enrollment_kind, personal), ids in batches.items()
                for c in inventory_commands(EnrollmentKind(enrollment_kind), personal=personal)
            ]
            return uuids[0]
        command = self._command(kind, parameters, targets[0])
        return await self._queue.enqueue(
            command, org_id=org_id, enrollment_ids=enrollment_ids, created_by=actor, action=kind.value
        )

    def _command(self, kind: DeviceAction, p: Mapping[str, Any], target: ActionTarget) -> dict[str, Any]:
        try:
            match kind:
                case DeviceAction.RETIRE:
                    return apple.remove_profile(self._profile_identifier)
                case DeviceAction.WIPE:
                    return apple.erase_device(
                        pin=p.get("macOsUnlockCode"),
                        preserve_data_plan=p.get("persistEsimDataPlan"),
                        obliteration_behavior=p.get("obliterationBehavior"),
                    )
                case DeviceAction.REMOTE_LOCK:
                    return apple.device_lock(message=p.get("message"), phone_number=p.get("phoneNumber"))
                case DeviceAction.REBOOT_NOW:
                    return apple.restart_device()
                case DeviceAction.SHUT_DOWN:
                    return apple.shut_down_device()
                case DeviceAction.SET_DEVICE_NAME:
                    return apple.settings_device_name(_required(p, "deviceName"))
                case DeviceAction.RESET_PASSCODE:
                    assert target.unlock_token_encrypted is not None
                    return apple.clear_passcode(
                        self._secrets.decrypt(target.unlock_token_encrypted, purpose=UNLOCK_PURPOSE)
                    )
                case DeviceAction.ENABLE_LOST_MODE:
                    return apple.enable_lost_mode(
                        message=p.get("message"), phone_number=p.get("phoneNumber"), footnote=p.get("footer")
                    )
                case DeviceAction.DISABLE_LOST_MODE:
                    return apple.disable_lost_mode()
                case DeviceAction.LOGOUT_SHARED_DEVICE_USER:
                    return apple.log_out_user()
                case DeviceAction.DELETE_SHARED_DEVICE_USER:
                    force = p.get("forceDeletion", False)
                    if not isinstance(force, bool):
                        raise InvalidInput("forceDeletion must be true or false")
                    user = _required(p, "userPrincipalName")
                    if not isinstance(user, str) or len(user) > MAX_USER_PRINCIPAL_NAME:
                        raise InvalidInput(f"userPrincipalName must be at most {MAX_USER_PRINCIPAL_NAME} characters")
                    return apple.delete_user(user, force_deletion=force)
        except (ValueError, TypeError) as error:
            raise InvalidInput(str(error)) from None
        raise AssertionError(kind)


_REQUEST_TYPE = {
    DeviceAction.RETIRE: "RemoveProfile",
    DeviceAction.WIPE: "EraseDevice",
    DeviceAction.REMOTE_LOCK: "DeviceLock",
    DeviceAction.REBOOT_NOW: "RestartDevice",
    DeviceAction.SHUT_DOWN: "ShutDownDevice",
    DeviceAction.SET_DEVICE_NAME: "Settings",
    DeviceAction.RESET_PASSCODE: "ClearPasscode",
    DeviceAction.ENABLE_LOST_MODE: "EnableLostMode",
    DeviceAction.DISABLE_LOST_MODE: "DisableLostMode",
    DeviceAction.LOGOUT_SHARED_DEVICE_USER: "LogOutUser",
    DeviceAction.DELETE_SHARED_DEVICE_USER: "DeleteUser",
}
# Apple accepts these on iPhone and iPad only when the device is supervised; Macs restart and shut down freely.
_SUPERVISED_ONLY_ON_MOBILE = {
    DeviceAction.ENABLE_LOST_MODE,
    DeviceAction.DISABLE_LOST_MODE,
    DeviceAction.SHUT_DOWN,
    DeviceAction.REBOOT_NOW,
}
_MOBILE_ONLY = {DeviceAction.ENABLE_LOST_MODE, DeviceAction.DISABLE_LOST_MODE}


def _action(name: str) -> DeviceAction:
    try:
        return DeviceAction(name)
    except ValueError:
        raise InvalidInput(f"unknown action {name!r}; one of: {', '.join(a.value for a in DeviceAction)}") from None


def _refusal(kind: DeviceAction, target: ActionTarget | None) -> str | None:
    """Why the action cannot reach this device, or None."""
    if target is None:
        return "device not found"
    if not action_allowed(target.state) or target.enrollment_id is None:
        return f"device is {target.state.value}: it is no longer managed"
    if (
        target.enrollment_kind == EnrollmentKind.USER_ENROLLMENT.value
        and _REQUEST_TYPE.get(kind) in USER_ENROLLMENT_FORBIDDEN
    ):
        return f"{kind.value} is not available for User Enrollment devices"
    if kind in _MOBILE_ONLY and target.operating_system == "macOS":
        return f"{kind.value} is available for iPhone and iPad only"
    if kind in _SUPERVISED_ONLY_ON_MOBILE and target.operating_system != "macOS" and target.is_supervised is False:
        return f"{kind.value} needs a supervised device"
    if kind in SHARED_DEVICE_ACTIONS and not target.is_multi_user:
        return f"{kind.value} is available on a Shared iPad only, and this device has not reported itself as one"
    if kind is DeviceAction.RESET_PASSCODE and target.unlock_token_encrypted is None:
        return "the device has not escrowed an unlock token, so its passcode cannot be cleared"
    return None


def _required(parameters: Mapping[str, Any], key: str) -> Any:
    if not parameters.get(key):
        raise InvalidInput(f"{key} is required")
    return parameters[key]
