"""ADE enrollment profiles: settings, the rules between them, and Apple's DEP profile JSON they become.

Settings mirror Graph's `depIOSEnrollmentProfile` / `depMacOSEnrollmentProfile` (spec/anchors.md §5): `graph_name`
gives each field's Graph property, and every `Problem` names the Graph property at fault and the seed line of its
rule (003_729e51c15a5a5608.txt:4833-5021 iOS/iPadOS, 5755-5838 Apple School Manager, 6731-6800 macOS). The DEP
mapping follows spec/apple-protocols.md §7.4. docs/ade-rules.md records the readings chosen where seeds disagree.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlsplit

from muster.domain.ade_tokens import Program
from muster.domain.device_names import template_problems

SEED = "003_729e51c15a5a5608.txt"
APPLE_DEP_PROFILE = "apple-protocols.md §7.4"
SKIP_KEYS = "apple-device-management other/skipkeys.yaml"

# Apple's limits on the define-profile call.
TEXT_LIMITS = {"displayName": 125, "supportDepartment": 125, "supportPhoneNumber": 50, "supportEmailAddress": 250}
# Shared iPad (003_729e51c15a5a5608.txt:4942-4955).
CACHED_USERS_ON_SMALL_IPADS = 24
MAX_PASSCODE_GRACE_SECONDS = 14_400
MIN_SESSION_TIMEOUT_SECONDS = 30


class Platform(StrEnum):
    IOS = "iOS"
    MACOS = "macOS"


class AuthenticationMethod(StrEnum):
    """Where users with affinity authenticate (003_729e51c15a5a5608.txt:4850-4859)."""

    COMPANY_PORTAL = "companyPortal"  # Graph enableAuthenticationViaCompanyPortal
    SETUP_ASSISTANT_MODERN = "setupAssistantModern"  # Graph configurationWebUrl: a web view at configuration_web_url
    SETUP_ASSISTANT = "setupAssistant"  # "legacy": Apple's basic HTTP authentication in Setup Assistant


class PairingMode(StrEnum):
    """ "Sync with computers" (Graph iTunesPairingMode)."""

    DISALLOW = "disallow"  # "Deny all": the port only charges
    ALLOW = "allow"
    REQUIRES_CERTIFICATE = "requiresCertificate"  # "Allow Apple Configurator by certificate"


@dataclass(frozen=True)
class Pane:
    """A Setup Assistant screen a profile can hide: Apple's skip key, Graph property, first OS versions with it."""

    skip_key: str
    label: str
    graph_property: str
    ios: str | None  # None: the screen does not exist on that platform
    macos: str | None
    note: str = ""


_BROKEN_SINCE_14_5 = "Doesn't work on iOS/iPadOS 14.5 and later; require a passcode with a device policy instead."

# Seeds 003:4994-5021 (iOS), 5819-5838 (Apple School Manager, which adds Home Button), 6781-6800 (macOS); where a
# seed row gives no version, Apple's skipkeys.yaml does.
PANES: dict[str, Pane] = {
    pane.skip_key: pane
    for pane in (
        Pane("Passcode", "Passcode", "passCodeDisabled", "7.0", None, _BROKEN_SINCE_14_5),
        Pane("Location", "Location Services", "locationDisabled", "7.0", "10.11"),
        Pane("Restore", "Restore", "restoreBlocked", "7.0", "10.9"),
        Pane("AppleID", "Apple ID", "appleIdDisabled", "7.0", "10.9"),
        Pane("TOS", "Terms and conditions", "termsAndConditionsDisabled", "7.0", "10.9"),
        Pane("Biometric", "Touch ID and Face ID", "touchIdDisabled", "8.1", "10.12.4", _BROKEN_SINCE_14_5),
        Pane("Payment", "Apple Pay", "applePayDisabled", "7.0", "10.12.4"),
        Pane("Zoom", "Zoom", "zoomDisabled", "8.3", None),
        Pane("Siri", "Siri", "siriDisabled", "7.0", "10.12"),
        Pane("Diagnostics", "Diagnostics Data", "diagnosticsDisabled", "7.0", "10.9"),
        Pane("DisplayTone", "Display Tone", "displayToneSetupDisabled", "9.3.2", "10.13.6"),
        Pane("Privacy", "Privacy", "privacyPaneDisabled", "11.3", "10.13.4"),
        Pane("Android", "Android Migration", "restoreFromAndroidDisabled", "9.0", None),
        Pane("iMessageAndFaceTime", "iMessage & FaceTime", "iMessageAndFaceTimeScreenDisabled", "9.0", None),
        Pane("OnBoarding", "Onboarding", "onBoardingScreenDisabled", "11.0", None),
        Pane("ScreenTime", "Screen Time", "screenTimeScreenDisabled", "12.0", "10.15"),
        Pane("SIMSetup", "SIM Setup", "simSetupScreenDisabled", "12.0", None),
        Pane("SoftwareUpdate", "Software Update", "softwareUpdateScreenDisabled", "12.0", None),
        Pane("WatchMigration", "Watch Migration", "watchMigrationScreenDisabled", "11.0", None),
        Pane("Appearance", "Appearance", "appearanceScreenDisabled", "13.0", "10.14"),
        Pane(
            "DeviceToDeviceMigration",
            "Device to Device Migration",
            "deviceToDeviceMigrationDisabled",
            "12.4",
            None,
            "Never appears on ADE devices running iOS 13 and later.",
        ),
        Pane("RestoreCompleted", "Restore Completed", "restoreCompletedScreenDisabled", "14.0", None),
        Pane("UpdateCompleted", "Software Update Completed", "updateCompleteScreenDisabled", "14.0", None),
        Pane("Welcome", "Get Started", "welcomeScreenDisabled", "13.0", None),
        Pane("HomeButtonSensitivity", "Home Button", "homeButtonScreenDisabled", "10.0", None),
        Pane("FileVault", "FileVault", "fileVaultDisabled", None, "10.10"),
        Pane("iCloudDiagnostics", "iCloud diagnostics", "iCloudDiagnosticsDisabled", None, "10.12.4"),
        Pane("Registration", "Registration", "registrationDisabled", None, "10.9"),
        Pane("iCloudStorage", "iCloud Storage", "iCloudStorageDisabled", None, "10.13.4"),
        Pane("Accessibility", "Accessibility", "accessibilityScreenDisabled", None, "11.0", "Hidden: no VoiceOver."),
        Pane("UnlockWithWatch", "Auto unlock with Apple Watch", "autoUnlockWithWatchDisabled", None, "12.0"),
    )
}


# Newer skip keys in Apple's schema that the seeds do not list: passed to Apple as given (devices ignore keys
# they do not know), with no admin-center label of their own.
OTHER_APPLE_SKIP_KEYS = frozenset(
    {"ActionButton", "AppStore", "CameraButton", "EnableLockdownMode", "Intelligence", "Keyboard", "Safety",
     "MessagingActivationUsingPhoneNumber", "SpokenLanguage", "TermsOfAddress", "Wallpaper"}
)  # fmt: skip


def panes_for(platform: Platform) -> list[Pane]:
    """The screens an admin can hide on `platform`, in the admin center's order."""
    return [pane for pane in PANES.values() if (pane.ios if platform is Platform.IOS else pane.macos)]


@dataclass(frozen=True)
class AdeProfileSettings:
    """One ADE enrollment profile. Defaults are Graph's (unset booleans are false) and Apple's (pairing allowed)."""

    display_name: str
    platform: Platform = Platform.IOS
    description: str = ""
    is_default: bool = False
    requires_user_authentication: bool = False  # "Enroll with User Affinity"
    enable_authentication_via_company_portal: bool = False
    modern_authentication: bool = False
    install_company_portal: bool = False  # with Setup Assistant authentication (003:4890)
    company_portal_vpp_token_id: str | None = None
    enable_single_app_enrollment_mode: bool = False
    supervised_mode_enabled: bool = False
    profile_removal_disabled: bool = False  # "Locked enrollment"
    is_mandatory: bool = False
    await_device_configured_confirmation: bool = False  # "Await final configuration"
    itunes_pairing_mode: PairingMode = PairingMode.ALLOW
    management_certificates: tuple[bytes, ...] = ()  # DER Apple Configurator certificates
    enable_shared_ipad: bool = False
    shared_ipad_maximum_user_count: int | None = None  # None or 0: the iPad decides
    passcode_lock_grace_period_in_seconds: int | None = None
    user_session_timeout_in_seconds: int | None = None
    force_temporary_session: bool = False
    temporary_session_timeout_in_seconds: int | None = None
    device_name_template: str | None = None  # None or "": Apple's default name (the device type)
    carrier_activation_url: str | None = None
    # Muster's own: devices that can update during Setup Assistant (iOS 17 / macOS 14) must reach this version
    # before they enroll (apple-protocols.md §7.5, `com.apple.softwareupdate.required`).
    minimum_os_version: str | None = None
    support_department: str = ""
    support_phone_number: str = ""
    support_email_address: str = ""  # Muster's own `supportEmailAddress`: Graph has none, Apple's DEP profile has one
    hidden_panes: frozenset[str] = frozenset()  # skip keys (Graph enabledSkipKeys)

    @property
    def authentication_method(self) -> AuthenticationMethod | None:
        """None without user affinity: nobody authenticates."""
        if not self.requires_user_authentication:
            return None
        if self.enable_authentication_via_company_portal:
            return AuthenticationMethod.COMPANY_PORTAL
        if self.modern_authentication:
            return AuthenticationMethod.SETUP_ASSISTANT_MODERN
        return AuthenticationMethod.SETUP_ASSISTANT


# Where Graph's property is not the field name in camelCase.
_GRAPH_SPELLINGS = {
    "modern_authentication": "configurationWebUrl",  # a Boolean in Graph, despite its name
    "install_company_portal": "requireCompanyPortalOnSetupAssistantEnrolledDevices",
    "itunes_pairing_mode": "iTunesPairingMode",
    "enable_shared_ipad": "enableSharedIPad",
    "shared_ipad_maximum_user_count": "sharedIPadMaximumUserCount",
    "hidden_panes": "enabledSkipKeys",
}


def graph_name(field: str) -> str:
    """The Graph property of an `AdeProfileSettings` field."""
    head, *rest = field.split("_")
    return _GRAPH_SPELLINGS.get(field, head + "".join(word.capitalize() for word in rest))


class Severity(StrEnum):
    ERROR = "error"  # the profile cannot be saved
    WARNING = "warning"  # saved, but the admin should know


@dataclass(frozen=True)
class Problem:
    setting: str  # the Graph property at fault
    message: str
    source: str  # the seed line (or spec section) the rule comes from
    severity: Severity = Severity.ERROR


def is_supervised(settings: AdeProfileSettings) -> bool:
    """Supervision as devices get it: forced by user affinity on iOS/iPadOS (003:963), always for Macs.

    The macOS profile has no supervision choice (003:6741-6764); ADE Macs are supervised, which is also what lets
    locked enrollment (`is_mdm_removable` false) through Apple's check.
    """
    if settings.platform is Platform.MACOS:
        return True
    return settings.supervised_mode_enabled or settings.requires_user_authentication


def normalize_profile(settings: AdeProfileSettings) -> AdeProfileSettings:
    """The settings as stored and shown: with user affinity, Supervised is set to Yes (003:963)."""
    if settings.platform is Platform.IOS and settings.requires_user_authentication:
        return replace(settings, supervised_mode_enabled=True)
    return settings


def validate_profile(settings: AdeProfileSettings, *, program: Program = Program.BUSINESS_MANAGER) -> list[Problem]:
    """Every rule the settings break, errors and warnings alike."""
    problems = [Problem(r.setting, r.message, r.source, r.severity) for r in _RULES if r.broken(settings)]
    return problems + _text_problems(settings, program) + _shared_ipad_problems(settings) + _pane_problems(settings)


def to_dep_profile_fields(
    settings: AdeProfileSettings,
    *,
    enrollment_url: str,
    configuration_web_url: str | None = None,
    anchor_certs: Sequence[bytes] = (),
) -> dict[str, object]:
    """Apple's define-profile JSON (apple-protocols.md §7.4) for valid settings.

    `enrollment_url` receives the device's MachineInfo; `configuration_web_url` is the sign-in web view, needed
    for Setup Assistant with modern authentication; `anchor_certs` (DER) pin the TLS certificates of both.
    """
    profile: dict[str, object] = {
        "profile_name": settings.display_name,
        "url": enrollment_url,
        "is_supervised": is_supervised(settings),
        "is_mdm_removable": not settings.profile_removal_disabled,
        "is_mandatory": settings.is_mandatory,
        "await_device_configured": settings.await_device_configured_confirmation,
        "skip_setup_items": sorted(settings.hidden_panes),
    }
    if settings.platform is Platform.IOS:
        profile["is_multi_user"] = settings.enable_shared_ipad
        profile["allow_pairing"] = settings.itunes_pairing_mode is PairingMode.ALLOW
        if settings.itunes_pairing_mode is PairingMode.REQUIRES_CERTIFICATE:
            profile["supervising_host_certs"] = _base64(settings.management_certificates)
    contact = {
        "department": settings.support_department,
        "support_phone_number": settings.support_phone_number,
        "support_email_address": settings.support_email_address,
    }
    profile.update({key: value for key, value in contact.items() if value})
    if settings.authentication_method is AuthenticationMethod.SETUP_ASSISTANT_MODERN:
        if not configuration_web_url:
            raise ValueError("Setup Assistant with modern authentication needs a configuration_web_url")
        profile["configuration_web_url"] = configuration_web_url
    if anchor_certs:
        profile["anchor_certs"] = _base64(anchor_certs)
    return profile


@dataclass(frozen=True)
class _Rule:
    setting: str
    message: str
    source: str
    broken: Callable[[AdeProfileSettings], bool]
    severity: Severity = Severity.ERROR


def _ios(s: AdeProfileSettings) -> bool:
    return s.platform is Platform.IOS


def _has_email_shape(address: str) -> bool:
    return re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address) is not None


_CP = AuthenticationMethod.COMPANY_PORTAL
_LEGACY = AuthenticationMethod.SETUP_ASSISTANT
_CERTIFICATE = PairingMode.REQUIRES_CERTIFICATE

# fmt: off
_RULES = (
    _Rule("displayName", "Enter a name for the profile.", f"{SEED}:4836", lambda s: not s.display_name.strip()),
    _Rule("supportEmailAddress", "Enter an e-mail address such as help@example.com.", APPLE_DEP_PROFILE,
          lambda s: bool(s.support_email_address) and not _has_email_shape(s.support_email_address)),
    _Rule("enableAuthenticationViaCompanyPortal", "Company Portal authentication needs user affinity.",
          f"{SEED}:957", lambda s: s.enable_authentication_via_company_portal and not s.requires_user_authentication),
    _Rule("configurationWebUrl", "Setup Assistant with modern authentication needs user affinity.", f"{SEED}:957",
          lambda s: s.modern_authentication and not s.requires_user_authentication),
    _Rule("configurationWebUrl", "Choose Company Portal or Setup Assistant with modern authentication, not both.",
          f"{SEED}:4850", lambda s: s.enable_authentication_via_company_portal and s.modern_authentication),
    _Rule("enableAuthenticationViaCompanyPortal", "Macs authenticate in Setup Assistant, not in Company Portal.",
          f"{SEED}:6745-6750", lambda s: s.enable_authentication_via_company_portal and not _ios(s)),
    _Rule("requireCompanyPortalOnSetupAssistantEnrolledDevices", "Company Portal doesn't work without user affinity.",
          f"{SEED}:5758", lambda s: s.install_company_portal and not s.requires_user_authentication),
    _Rule("companyPortalVppTokenId", "Installing Company Portal with VPP needs user affinity.", f"{SEED}:961",
          lambda s: bool(s.company_portal_vpp_token_id) and not s.requires_user_authentication),
    _Rule("requireCompanyPortalOnSetupAssistantEnrolledDevices",
          "With Setup Assistant authentication, set Install Company Portal to Yes to install it with VPP.",
          f"{SEED}:4890",
          lambda s: bool(s.company_portal_vpp_token_id) and s.authentication_method is _LEGACY
          and not s.install_company_portal),
    _Rule("enableSingleAppEnrollmentMode",
          "Single App Mode until authentication needs Company Portal authentication and a VPP token for it.",
          f"{SEED}:962", lambda s: s.enable_single_app_enrollment_mode
          and (s.authentication_method is not _CP or not s.company_portal_vpp_token_id)),
    _Rule("enableSingleAppEnrollmentMode",
          "Company Portal with Single App Mode is only supported for iOS version 11.3.1 or higher.",
          f"{SEED}:4901", lambda s: s.enable_single_app_enrollment_mode, Severity.WARNING),
    _Rule("profileRemovalDisabled", "Locked enrollment needs Supervised set to Yes.", f"{SEED}:4922",
          lambda s: s.profile_removal_disabled and not is_supervised(s)),
    _Rule("managementCertificates", "Choose at least one Apple Configurator certificate.", f"{SEED}:4964, 4972",
          lambda s: s.itunes_pairing_mode is _CERTIFICATE and not s.management_certificates),
    _Rule("managementCertificates", "Apple Configurator certificates are used only to allow pairing by certificate.",
          f"{SEED}:4964", lambda s: bool(s.management_certificates) and s.itunes_pairing_mode is not _CERTIFICATE,
          Severity.WARNING),
    _Rule("iTunesPairingMode", "Sync with computers applies to iOS/iPadOS only.", f"{SEED}:6741-6764",
          lambda s: not _ios(s) and s.itunes_pairing_mode is not PairingMode.ALLOW),
    _Rule("deviceNameTemplate", "Device name templates apply to iPhone, iPad and iPod touch.", f"{SEED}:4975",
          lambda s: bool(s.device_name_template) and not _ios(s)),
    _Rule("carrierActivationUrl", "Cellular data plans apply to iOS/iPadOS only.", f"{SEED}:4977",
          lambda s: s.carrier_activation_url is not None and not _ios(s)),
    _Rule("carrierActivationUrl", "Enter the carrier's activation server as an https URL.", f"{SEED}:4977",
          lambda s: s.carrier_activation_url is not None and not _is_https_url(s.carrier_activation_url)),
    _Rule("enableSharedIPad", "Shared iPad is an iPadOS mode.", f"{SEED}:4930",
          lambda s: s.enable_shared_ipad and not _ios(s)),
    _Rule("enableSharedIPad", "Shared iPad needs 'Enroll without User Affinity'.", f"{SEED}:4930, 5798",
          lambda s: s.enable_shared_ipad and s.requires_user_authentication),
    _Rule("enableSharedIPad", "Shared iPad needs Supervised set to Yes.", f"{SEED}:4930, 4911",
          lambda s: s.enable_shared_ipad and not is_supervised(s)),
    _Rule("sharedIPadMaximumUserCount", "Enter a positive number of users.", f"{SEED}:4942",
          lambda s: (s.shared_ipad_maximum_user_count or 0) < 0),
    _Rule("sharedIPadMaximumUserCount", "32-GB and 64-GB iPads hold up to 24 users; more may run out of space.",
          f"{SEED}:4942", lambda s: (s.shared_ipad_maximum_user_count or 0) > CACHED_USERS_ON_SMALL_IPADS,
          Severity.WARNING),
    _Rule("passcodeLockGracePeriodInSeconds", "Enter a number of seconds from 0 to 14,400.", f"{SEED}:4946",
          lambda s: not 0 <= (s.passcode_lock_grace_period_in_seconds or 0) <= MAX_PASSCODE_GRACE_SECONDS),
    _Rule("userSessionTimeoutInSeconds", "Enter 0 (never) or at least 30 seconds.", f"{SEED}:4947",
          lambda s: _too_short(s.user_session_timeout_in_seconds)),
    _Rule("temporarySessionTimeoutInSeconds", "Enter 0 (never) or at least 30 seconds.", f"{SEED}:4955",
          lambda s: _too_short(s.temporary_session_timeout_in_seconds)),
    _Rule("temporarySessionTimeoutInSeconds", "Set 'Require Shared iPad temporary session only' to Yes first.",
          f"{SEED}:4957", lambda s: s.temporary_session_timeout_in_seconds is not None
          and s.enable_shared_ipad and not s.force_temporary_session),
)
# fmt: on

# Shared iPad settings, and those a temporary-session-only iPad cancels out (003:4950-4954).
_SHARED_IPAD_SETTINGS = (
    "shared_ipad_maximum_user_count",
    "passcode_lock_grace_period_in_seconds",
    "user_session_timeout_in_seconds",
    "force_temporary_session",
    "temporary_session_timeout_in_seconds",
)
_CANCELLED_BY_TEMPORARY_SESSIONS = _SHARED_IPAD_SETTINGS[:3]


_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def os_version_below(version: str, minimum: str) -> bool:
    """Apple version strings compared number by number ("17.10" is after "17.9"); unreadable counts as below."""
    if not _VERSION.match(version):
        return True
    parts = [int(p) for p in version.split(".")]
    floor = [int(p) for p in minimum.split(".")]
    width = max(len(parts), len(floor))
    return parts + [0] * (width - len(parts)) < floor + [0] * (width - len(floor))


def _text_problems(s: AdeProfileSettings, program: Program) -> list[Problem]:
    problems: list[Problem] = []
    if s.minimum_os_version is not None and not _VERSION.match(s.minimum_os_version):
        problems.append(Problem("minimumOsVersion", "must be a version such as 17 or 17.4.1", APPLE_DEP_PROFILE))
    values = {
        "displayName": s.display_name,
        "supportDepartment": s.support_department,
        "supportPhoneNumber": s.support_phone_number,
        "supportEmailAddress": s.support_email_address,
    }
    problems += [
        Problem(name, f"At most {limit} characters.", APPLE_DEP_PROFILE)
        for name, limit in TEXT_LIMITS.items()
        if len(values[name]) > limit
    ]
    if program is Program.SCHOOL_MANAGER:
        problems += [
            Problem(name, "Apple School Manager profiles need a department and its phone number.", f"{SEED}:5811-5813")
            for name in ("supportDepartment", "supportPhoneNumber")
            if not values[name].strip()
        ]
    if s.device_name_template:
        source = f"{SEED}:966, 4975"
        problems += [Problem("deviceNameTemplate", text, source) for text in template_problems(s.device_name_template)]
    return problems


def _shared_ipad_problems(s: AdeProfileSettings) -> list[Problem]:
    set_ = [name for name in _SHARED_IPAD_SETTINGS if getattr(s, name) not in (None, False)]
    if not s.enable_shared_ipad:
        return [Problem(graph_name(name), "Applies only to Shared iPad.", f"{SEED}:4940") for name in set_]
    if not s.force_temporary_session:
        return []
    return [
        Problem(graph_name(name), "Not applicable with temporary sessions only.", f"{SEED}:4950-4954", Severity.WARNING)
        for name in set_
        if name in _CANCELLED_BY_TEMPORARY_SESSIONS
    ]


def _pane_problems(s: AdeProfileSettings) -> list[Problem]:
    available = {pane.skip_key for pane in panes_for(s.platform)} | OTHER_APPLE_SKIP_KEYS
    problems = []
    for key in sorted(s.hidden_panes - available):
        pane = PANES.get(key)
        if pane is None:
            problems.append(Problem("enabledSkipKeys", f"Unknown Setup Assistant screen '{key}'.", SKIP_KEYS))
        else:
            where = f"{SEED}:4994-5021, 6781-6800"
            problems.append(Problem(pane.graph_property, f"No {pane.label} screen on {s.platform.value}.", where))
    return problems


def _too_short(timeout: int | None) -> bool:
    # No value or 0: the session never ends for inactivity.
    return bool(timeout) and (timeout or 0) < MIN_SESSION_TIMEOUT_SECONDS


def _is_https_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _base64(certificates: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(der).decode("ascii") for der in certificates]
