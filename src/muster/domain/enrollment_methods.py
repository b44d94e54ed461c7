"""How a device enrolls, and what each way implies for ownership and for enrollment restrictions.

Values follow Graph's `deviceEnrollmentType` where it has one (`userEnrollment` is Graph's name for a
user-initiated Company Portal enrollment, `appleBulkWithUser` for ADE with user affinity...); Muster-only values
use the same style. A device enrollment manager is not a method here but a fact about the enrolling account
(`EnrollmentAttempt.enrollment_manager`): a DEM enrolls through the ordinary methods (DEM-07), and its Android
cap depends on the method it uses (DEM-08).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from muster.domain.enrollment_restrictions import RestrictionPlatform


class EnrollmentMethod(StrEnum):
    APPLE_DEVICE_ENROLLMENT = "userEnrollment"  # profile-based / Company Portal device enrollment
    APPLE_USER_ENROLLMENT = "appleUserEnrollment"  # account-driven User Enrollment
    APPLE_ADE_WITH_USER = "appleBulkWithUser"
    APPLE_ADE_WITHOUT_USER = "appleBulkWithoutUser"
    APPLE_SCHOOL_MANAGER = "appleSchoolManager"
    APPLE_CONFIGURATOR = "appleConfigurator"
    WINDOWS_AZURE_AD_JOIN = "windowsAzureADJoin"  # join during setup or from Settings, automatic MDM enrollment
    WINDOWS_WORK_ACCOUNT = "windowsAutoEnrollment"  # "Add work account" from Settings, automatic MDM enrollment
    WINDOWS_MDM_ONLY = "windowsMdmOnly"  # "Enroll only in device management" from Settings
    WINDOWS_AUTOPILOT = "windowsAutopilot"
    WINDOWS_BULK = "windowsBulkUserless"  # provisioning package
    WINDOWS_CO_MANAGEMENT = "windowsCoManagement"
    WINDOWS_GROUP_POLICY = "windowsGroupPolicy"  # GPO auto-enrollment of hybrid-joined devices
    ANDROID_DEVICE_ADMINISTRATOR = "androidDeviceAdministrator"
    ANDROID_WORK_PROFILE = "androidEnterprisePersonalWorkProfile"
    ANDROID_CORPORATE_WORK_PROFILE = "androidEnterpriseCorporateWorkProfile"
    ANDROID_FULLY_MANAGED = "androidEnterpriseFullyManaged"
    ANDROID_DEDICATED = "androidEnterpriseDedicatedDevice"


M = EnrollmentMethod
_APPLE = frozenset({RestrictionPlatform.IOS, RestrictionPlatform.MAC})
_IOS = frozenset({RestrictionPlatform.IOS})
_WINDOWS = frozenset({RestrictionPlatform.WINDOWS})
_WORK = frozenset({RestrictionPlatform.ANDROID_FOR_WORK})

# The restriction platform list(s) each method's devices belong to. Android Enterprise corporate modes sit under
# `androidForWork` for the device limit; their platform restriction is not evaluated (see PLATFORM_EXEMPT).
METHOD_PLATFORMS: Mapping[EnrollmentMethod, frozenset[RestrictionPlatform]] = {
    M.APPLE_DEVICE_ENROLLMENT: _APPLE,
    M.APPLE_USER_ENROLLMENT: _APPLE,
    M.APPLE_ADE_WITH_USER: _APPLE,
    M.APPLE_ADE_WITHOUT_USER: _APPLE,
    M.APPLE_SCHOOL_MANAGER: _APPLE,
    M.APPLE_CONFIGURATOR: _IOS,
    M.WINDOWS_AZURE_AD_JOIN: _WINDOWS,
    M.WINDOWS_WORK_ACCOUNT: _WINDOWS,
    M.WINDOWS_MDM_ONLY: _WINDOWS,
    M.WINDOWS_AUTOPILOT: _WINDOWS,
    M.WINDOWS_BULK: _WINDOWS,
    M.WINDOWS_CO_MANAGEMENT: _WINDOWS,
    M.WINDOWS_GROUP_POLICY: _WINDOWS,
    M.ANDROID_DEVICE_ADMINISTRATOR: frozenset({RestrictionPlatform.ANDROID}),
    M.ANDROID_WORK_PROFILE: _WORK,
    M.ANDROID_CORPORATE_WORK_PROFILE: _WORK,
    M.ANDROID_FULLY_MANAGED: _WORK,
    M.ANDROID_DEDICATED: _WORK,
}

# Corporate by the way they enroll: Apple programs (OWN-01 d), directory join on Windows (OWN-01 i, OWN-04),
# Autopilot, bulk and co-managed/GPO (hybrid-joined) Windows devices, Android Enterprise corporate modes (OWN-01 f-h).
CORPORATE_METHODS = frozenset(
    {
        M.APPLE_ADE_WITH_USER,
        M.APPLE_ADE_WITHOUT_USER,
        M.APPLE_SCHOOL_MANAGER,
        M.APPLE_CONFIGURATOR,
        M.WINDOWS_AZURE_AD_JOIN,
        M.WINDOWS_AUTOPILOT,
        M.WINDOWS_BULK,
        M.WINDOWS_CO_MANAGEMENT,
        M.WINDOWS_GROUP_POLICY,
        M.ANDROID_CORPORATE_WORK_PROFILE,
        M.ANDROID_FULLY_MANAGED,
        M.ANDROID_DEDICATED,
    }
)

# Where OS min/max applies: Windows, and the Company Portal enrollments of iOS/iPadOS and Android; never
# Apple's programs (ADE, Apple School Manager, Apple Configurator: R-185, 003:7166) nor User Enrollment.
VERSION_CHECKED_METHODS = frozenset(
    {M.APPLE_DEVICE_ENROLLMENT, M.ANDROID_DEVICE_ADMINISTRATOR, M.ANDROID_WORK_PROFILE}
) | {method for method, platforms in METHOD_PLATFORMS.items() if platforms == _WINDOWS}

# Not user-driven: only the default restrictions apply (R-191 co-management's device token, R-193, WB-20).
USERLESS_METHODS = frozenset({M.APPLE_ADE_WITHOUT_USER, M.WINDOWS_BULK, M.WINDOWS_CO_MANAGEMENT, M.ANDROID_DEDICATED})

# Shared-device scenarios: the device limit does not apply and their devices do not count toward it (R-194,
# DLR-04, DLR-08, DLR-09, R-202 `DeviceCountsForDeviceCap`).
SHARED_MODE_METHODS = frozenset(
    {
        M.WINDOWS_AZURE_AD_JOIN,
        M.WINDOWS_AUTOPILOT,
        M.WINDOWS_BULK,
        M.WINDOWS_CO_MANAGEMENT,
        M.WINDOWS_GROUP_POLICY,
        M.ANDROID_DEDICATED,
    }
)

# No platform tab covers Android Enterprise corporate modes: R-181 lists device administrator and the work
# profile only, so their enrollments see no platform restriction (the device limit still applies, DLR-04).
PLATFORM_EXEMPT_METHODS = frozenset({M.ANDROID_CORPORATE_WORK_PROFILE, M.ANDROID_FULLY_MANAGED, M.ANDROID_DEDICATED})

# Windows enrollments "authorized for corporate enrollment" pass a personal-device block; the three
# automatic-MDM cases pass it only when the device is registered with Autopilot.
WINDOWS_CORPORATE_AUTHORIZED = frozenset(
    {M.WINDOWS_AUTOPILOT, M.WINDOWS_BULK, M.WINDOWS_CO_MANAGEMENT, M.WINDOWS_GROUP_POLICY}
)
WINDOWS_AUTOPILOT_AUTHORIZED = frozenset({M.WINDOWS_AZURE_AD_JOIN, M.WINDOWS_WORK_ACCOUNT})

# A DEM cannot use Apple's programs (DEM-10) nor Android Enterprise corporate-owned modes (DEM-09).
DEM_REFUSED_METHODS = frozenset(
    {
        M.APPLE_ADE_WITH_USER,
        M.APPLE_ADE_WITHOUT_USER,
        M.APPLE_SCHOOL_MANAGER,
        M.ANDROID_CORPORATE_WORK_PROFILE,
        M.ANDROID_FULLY_MANAGED,
    }
)
DEM_DEVICE_CAP = 1000  # DEM-05
DEM_ANDROID_WORK_PROFILE_CAP = 10  # DEM-08
