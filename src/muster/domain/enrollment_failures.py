"""Why an enrollment is refused: stable codes, the Enrollment failures report's texts and the user's message.

The seed names one reason ("Device platform blocked", 003:7381, R-214); the others are ours (seed-catalog-C gap
18), worded the same way: a report "failure reason", a message for the user, and recommended steps (R-213).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    code: str
    failure_reason: str
    message: str
    remediation: str


_CATALOG: dict[str, tuple[str, str, str]] = {
    "platformBlocked": (
        "Device platform blocked",
        "This device can't be enrolled while the platform is Blocked under Device Type Restrictions.",
        "Enroll a device of another platform, or ask your administrator to allow this platform in the enrollment "
        "device platform restrictions.",
    ),
    "personalDeviceBlocked": (
        "Personally owned device blocked",
        "Personally owned devices of this platform can't be enrolled; only devices your organization owns can.",
        "Ask your administrator to register the device's serial number or IMEI as a corporate device identifier, "
        "or to allow personally owned devices.",
    ),
    "osVersionNotAllowed": (
        "OS version not allowed",
        "This device runs OS version {version}; your organization allows versions from {low} to {high}.",
        "Update the device to an allowed version and enroll again, or ask your administrator to change the "
        "allowed OS versions in the device platform restriction.",
    ),
    "manufacturerBlocked": (
        "Device manufacturer blocked",
        "Devices made by {manufacturer} can't be enrolled in your organization.",
        "Enroll a device from another manufacturer, or ask your administrator to unblock this manufacturer.",
    ),
    "skuBlocked": (
        "Windows edition blocked",
        "This Windows edition ({sku}) can't be enrolled in your organization.",
        "Upgrade the device to an allowed Windows edition, or ask your administrator to unblock this edition.",
    ),
    "deviceLimitReached": (
        "Device limit reached",
        "You have already enrolled the maximum number of devices ({limit}). Remove a device you no longer use from "
        "the Company Portal, then enroll this one.",
        "The user must unenroll or remove one of their devices, or the administrator can raise the device limit "
        "in the enrollment device limit restriction.",
    ),
    "demDeviceLimitReached": (
        "Device enrollment manager limit reached",
        "This device enrollment manager account has enrolled the maximum number of devices ({limit}).",
        "Remove devices enrolled by this account, or enroll with another device enrollment manager account.",
    ),
    "demNotSupported": (
        "Enrollment method not supported for device enrollment managers",
        "A device enrollment manager account can't enroll devices with this method ({method}).",
        "Enroll with a standard user account, or use another enrollment method.",
    ),
    "termsNotAccepted": (
        "Terms and conditions not accepted",
        "Accept your organization's terms and conditions before enrolling: {titles}.",
        "Accept the terms in the Company Portal, then enroll again.",
    ),
}

CODES = frozenset(_CATALOG)


def failure(code: str, **details: str | int) -> Failure:
    """The failure `code`, its message filled in with `details`."""
    reason, message, remediation = _CATALOG[code]
    return Failure(code, reason, message.format(**details), remediation)
