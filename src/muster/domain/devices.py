"""Managed devices: management states and the admin actions (Intune's names) that drive them."""

from __future__ import annotations

from enum import StrEnum


class ManagementState(StrEnum):
    """Graph `managementState` values that Muster uses."""

    ENROLLING = "enrolling"  # Authenticate received, waiting for the first TokenUpdate
    MANAGED = "managed"
    RETIRE_PENDING = "retirePending"
    RETIRED = "retired"  # management profile removed by the retire action
    WIPE_PENDING = "wipePending"
    WIPED = "wiped"
    UNENROLLED = "unenrolled"  # the device checked out by itself


class DeviceAction(StrEnum):
    RETIRE = "retire"
    WIPE = "wipe"
    REMOTE_LOCK = "remoteLock"
    REBOOT_NOW = "rebootNow"
    SHUT_DOWN = "shutDown"
    SYNC_DEVICE = "syncDevice"
    SET_DEVICE_NAME = "setDeviceName"
    RESET_PASSCODE = "resetPasscode"
    ENABLE_LOST_MODE = "enableLostMode"
    DISABLE_LOST_MODE = "disableLostMode"
    LOGOUT_SHARED_DEVICE_USER = "logoutSharedAppleDeviceActiveUser"
    DELETE_SHARED_DEVICE_USER = "deleteUserFromSharedAppleDevice"


# Shared iPad actions: refused on a device that has not reported itself a Shared iPad (IsMultiUser).
SHARED_DEVICE_ACTIONS = frozenset({DeviceAction.LOGOUT_SHARED_DEVICE_USER, DeviceAction.DELETE_SHARED_DEVICE_USER})

ACTIVE_STATES = frozenset({ManagementState.MANAGED, ManagementState.RETIRE_PENDING, ManagementState.WIPE_PENDING})

# The state an action moves a device to when queued, and when the device acknowledges it.
PENDING_STATE = {
    DeviceAction.RETIRE: ManagementState.RETIRE_PENDING,
    DeviceAction.WIPE: ManagementState.WIPE_PENDING,
}
DONE_STATE = {DeviceAction.RETIRE: ManagementState.RETIRED, DeviceAction.WIPE: ManagementState.WIPED}


def action_allowed(state: ManagementState) -> bool:
    """Actions reach only devices that are still under management (a wiped or retired device has no channel)."""
    return state in ACTIVE_STATES
