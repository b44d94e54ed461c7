"""ADE enrollment profile settings, validation and DEP mapping (muster.domain.ade_profiles)."""

from __future__ import annotations

import base64
import json
from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.ade_profiles import (
    OTHER_APPLE_SKIP_KEYS,
    PANES,
    AdeProfileSettings,
    AuthenticationMethod,
    PairingMode,
    Platform,
    Problem,
    Severity,
    graph_name,
    is_supervised,
    normalize_profile,
    panes_for,
    to_dep_profile_fields,
    validate_profile,
)
from muster.domain.ade_tokens import Program

KIOSK = AdeProfileSettings(display_name="Kiosks")
WITH_AFFINITY = AdeProfileSettings(display_name="Staff", requires_user_authentication=True)
COMPANY_PORTAL = replace(WITH_AFFINITY, enable_authentication_via_company_portal=True)
SHARED_IPAD = replace(KIOSK, supervised_mode_enabled=True, enable_shared_ipad=True)
MAC = AdeProfileSettings(display_name="Macs", platform=Platform.MACOS)
ENROLL_URL = "https://mdm.example.com/ade/enroll"
CERT = b"0\x82\x01\x0a fake DER"

# Graph properties verified in spec/anchors.md §5, plus Muster's own supportEmailAddress.
VERIFIED_GRAPH_PROPERTIES = {
    *("displayName", "description", "requiresUserAuthentication", "enableAuthenticationViaCompanyPortal"),
    *("requireCompanyPortalOnSetupAssistantEnrolledDevices", "isDefault", "supervisedModeEnabled"),
    *("supportDepartment", "isMandatory", "supportPhoneNumber", "profileRemovalDisabled", "deviceNameTemplate"),
    *("configurationWebUrl", "enabledSkipKeys", "iTunesPairingMode", "managementCertificates"),
    *("awaitDeviceConfiguredConfirmation", "sharedIPadMaximumUserCount", "enableSharedIPad"),
    *("companyPortalVppTokenId", "enableSingleAppEnrollmentMode", "forceTemporarySession"),
    *("temporarySessionTimeoutInSeconds", "userSessionTimeoutInSeconds", "passcodeLockGracePeriodInSeconds"),
    *("carrierActivationUrl",),
}
# Muster's own properties, beyond Graph's (supportEmailAddress: Apple's DEP profile has it; minimumOsVersion:
# the software-update gate of apple-protocols.md §7.5).
MUSTER_PROPERTIES = {"supportEmailAddress", "minimumOsVersion"}


def _problems(settings: AdeProfileSettings, **kwargs: Program) -> list[tuple[str, Severity]]:
    return [(problem.setting, problem.severity) for problem in validate_profile(settings, **kwargs)]


def _only(settings: AdeProfileSettings) -> Problem:
    problems = validate_profile(settings)
    assert len(problems) == 1, problems
    return problems[0]


def test_every_field_has_its_verified_graph_name() -> None:
    """Settings use Graph's depIOSEnrollmentProfile property names (spec/anchors.md §5)."""
    names = {graph_name(field.name) for field in fields(AdeProfileSettings) if field.name != "platform"}
    assert names == VERIFIED_GRAPH_PROPERTIES | MUSTER_PROPERTIES
    assert graph_name("itunes_pairing_mode") == "iTunesPairingMode"
    assert graph_name("enable_shared_ipad") == "enableSharedIPad"


def test_pane_properties_are_graphs() -> None:
    """Each Setup Assistant pane maps to its Graph '...Disabled' property (spec/anchors.md §5, catalog C §1.7)."""
    assert PANES["DisplayTone"].graph_property == "displayToneSetupDisabled"
    assert PANES["Restore"].graph_property == "restoreBlocked"
    assert len({pane.graph_property for pane in PANES.values()}) == len(PANES)


def test_pane_catalog_follows_the_seed_lists() -> None:
    """Setup Assistant screens (003_729e51c15a5a5608.txt:4994-5021 iOS, 5832 Home Button, 6781-6800 macOS)."""
    assert len(panes_for(Platform.IOS)) == 25
    assert len(panes_for(Platform.MACOS)) == 18
    assert (PANES["DisplayTone"].ios, PANES["DisplayTone"].macos) == ("9.3.2", "10.13.6")
    assert (PANES["Privacy"].ios, PANES["Privacy"].macos) == ("11.3", "10.13.4")
    assert (PANES["UnlockWithWatch"].ios, PANES["UnlockWithWatch"].macos) == (None, "12.0")
    assert PANES["FileVault"].ios is None
    assert "14.5" in PANES["Passcode"].note and "14.5" in PANES["Biometric"].note  # 003:5001


def test_user_affinity_chooses_where_users_authenticate() -> None:
    """R-045: Company Portal, Setup Assistant (legacy) or with modern authentication (003:4850-4859)."""
    assert KIOSK.authentication_method is None
    assert WITH_AFFINITY.authentication_method is AuthenticationMethod.SETUP_ASSISTANT
    assert COMPANY_PORTAL.authentication_method is AuthenticationMethod.COMPANY_PORTAL
    modern = replace(WITH_AFFINITY, modern_authentication=True)
    assert modern.authentication_method is AuthenticationMethod.SETUP_ASSISTANT_MODERN


def test_plain_profiles_are_valid() -> None:
    """ADEP-01/02: a named profile with or without user affinity (003_729e51c15a5a5608.txt:954-956)."""
    assert validate_profile(KIOSK) == []
    assert validate_profile(WITH_AFFINITY) == []
    assert validate_profile(MAC) == []


def test_profile_needs_a_name() -> None:
    """ADEP-01: the profile has a Name (003_729e51c15a5a5608.txt:4836, 954)."""
    assert _only(replace(KIOSK, display_name="  ")).setting == "displayName"


def test_text_fields_stay_within_apples_limits() -> None:
    """Apple refuses longer texts in the DEP profile (apple-protocols.md §7.4)."""
    assert _problems(replace(KIOSK, display_name="n" * 125)) == []
    assert _problems(replace(KIOSK, display_name="n" * 126)) == [("displayName", Severity.ERROR)]
    assert _problems(replace(KIOSK, support_phone_number="1" * 51)) == [("supportPhoneNumber", Severity.ERROR)]


def test_support_email_must_look_like_an_address() -> None:
    """Apple's DEP profile carries support_email_address (apple-protocols.md §7.4)."""
    assert validate_profile(replace(KIOSK, support_email_address="help@contoso.com")) == []
    assert _only(replace(KIOSK, support_email_address="help desk")).setting == "supportEmailAddress"


def test_user_affinity_forces_supervision() -> None:
    """ADEP-07: with user affinity, Supervised is automatically Yes (003_729e51c15a5a5608.txt:963)."""
    assert not WITH_AFFINITY.supervised_mode_enabled
    assert normalize_profile(WITH_AFFINITY).supervised_mode_enabled
    assert is_supervised(WITH_AFFINITY)
    assert normalize_profile(KIOSK) == KIOSK


def test_company_portal_authentication_is_always_supervised() -> None:
    """R-057: 'Supervision is required for devices using Company Portal …' (003:4909), met by forcing (003:963)."""
    assert validate_profile(COMPANY_PORTAL) == []
    assert to_dep_profile_fields(COMPANY_PORTAL, enrollment_url=ENROLL_URL)["is_supervised"] is True


def test_authentication_method_needs_user_affinity() -> None:
    """ADEP-03: 'Select where users must authenticate' appears only with user affinity (003:957)."""
    assert _problems(replace(KIOSK, enable_authentication_via_company_portal=True)) == [
        ("enableAuthenticationViaCompanyPortal", Severity.ERROR)
    ]
    assert _problems(replace(KIOSK, modern_authentication=True)) == [("configurationWebUrl", Severity.ERROR)]


def test_only_one_authentication_method() -> None:
    """R-045: select one of the authentication options (003_729e51c15a5a5608.txt:4850)."""
    assert _only(replace(COMPANY_PORTAL, modern_authentication=True)).setting == "configurationWebUrl"


def test_macs_do_not_authenticate_in_company_portal() -> None:
    """macOS offers Setup Assistant (legacy) and with modern authentication only (003:6745-6750)."""
    mac_cp = replace(MAC, requires_user_authentication=True, enable_authentication_via_company_portal=True)
    assert _only(mac_cp).setting == "enableAuthenticationViaCompanyPortal"


def test_company_portal_needs_user_affinity() -> None:
    """'Enroll without User Affinity' - apps like the Company Portal app don't work (003:5758, 6744)."""
    problem = _only(replace(KIOSK, install_company_portal=True))
    assert problem.setting == "requireCompanyPortalOnSetupAssistantEnrolledDevices"
    assert problem.source == "003_729e51c15a5a5608.txt:5758"


def test_company_portal_vpp_token_needs_user_affinity() -> None:
    """ADEP-05: 'Install Company Portal with VPP' appears only with user affinity (003:961)."""
    assert _only(replace(KIOSK, company_portal_vpp_token_id="vpp-1")).setting == "companyPortalVppTokenId"
    assert validate_profile(replace(COMPANY_PORTAL, company_portal_vpp_token_id="vpp-1")) == []


def test_vpp_with_setup_assistant_needs_install_company_portal() -> None:
    """R-053: with Setup Assistant (legacy), Install Company Portal = Yes, then a VPP token (003:4890)."""
    legacy_vpp = replace(WITH_AFFINITY, company_portal_vpp_token_id="vpp-1")
    assert _only(legacy_vpp).setting == "requireCompanyPortalOnSetupAssistantEnrolledDevices"
    assert validate_profile(replace(legacy_vpp, install_company_portal=True)) == []
    modern_vpp = replace(legacy_vpp, modern_authentication=True)  # installs silently (003:4867-4869)
    assert validate_profile(modern_vpp) == []


def test_single_app_mode_needs_company_portal_and_vpp() -> None:
    """ADEP-06: only with affinity + Company Portal + VPP (003_729e51c15a5a5608.txt:962, 4891)."""
    without_vpp = replace(COMPANY_PORTAL, enable_single_app_enrollment_mode=True)
    assert _problems(without_vpp) == [
        ("enableSingleAppEnrollmentMode", Severity.ERROR),
        ("enableSingleAppEnrollmentMode", Severity.WARNING),
    ]
    assert _problems(replace(without_vpp, company_portal_vpp_token_id="vpp-1")) == [
        ("enableSingleAppEnrollmentMode", Severity.WARNING)
    ]


def test_single_app_mode_warns_about_ios_11_3_1() -> None:
    """R-056: the admin center's warning, word for word (003_729e51c15a5a5608.txt:4899-4901)."""
    settings = replace(COMPANY_PORTAL, company_portal_vpp_token_id="vpp-1", enable_single_app_enrollment_mode=True)
    warning = _only(settings)
    assert warning.message == "Company Portal with Single App Mode is only supported for iOS version 11.3.1 or higher."
    assert warning.severity is Severity.WARNING


def test_locked_enrollment_needs_supervision() -> None:
    """R-062: to use Locked enrollment, Supervised must be Yes (003:4922, 5797)."""
    locked = replace(KIOSK, profile_removal_disabled=True)
    problem = _only(locked)
    assert (problem.setting, problem.source) == ("profileRemovalDisabled", "003_729e51c15a5a5608.txt:4922")
    assert validate_profile(replace(locked, supervised_mode_enabled=True)) == []


def test_locked_enrollment_on_macs_needs_no_supervised_choice() -> None:
    """macOS Locked enrollment states no supervised prerequisite (003:6764); ADE Macs are supervised."""
    locked_mac = replace(MAC, profile_removal_disabled=True)
    assert validate_profile(locked_mac) == []
    dep = to_dep_profile_fields(locked_mac, enrollment_url=ENROLL_URL)
    assert (dep["is_supervised"], dep["is_mdm_removable"]) == (True, False)


def test_shared_ipad_needs_no_user_affinity_and_supervision() -> None:
    """R-065: Shared iPad needs Enroll without User Affinity and Supervised (003:4930, 4935-4938, 5798)."""
    assert validate_profile(SHARED_IPAD) == []
    assert _problems(replace(SHARED_IPAD, requires_user_authentication=True)) == [("enableSharedIPad", Severity.ERROR)]
    assert _only(replace(SHARED_IPAD, supervised_mode_enabled=False)).message == (
        "Shared iPad needs Supervised set to Yes."
    )


def test_shared_ipad_is_an_ipad_mode() -> None:
    """Shared iPad: iPads on iPadOS 13.4+, no iPhones and no Macs (003_729e51c15a5a5608.txt:4930, 4934)."""
    assert ("enableSharedIPad", Severity.ERROR) in _problems(replace(MAC, enable_shared_ipad=True))


def test_shared_ipad_settings_need_shared_ipad() -> None:
    """Shared iPad settings are configured for Shared iPad devices (003_729e51c15a5a5608.txt:4940-4957)."""
    assert _problems(replace(KIOSK, shared_ipad_maximum_user_count=10, force_temporary_session=True)) == [
        ("sharedIPadMaximumUserCount", Severity.ERROR),
        ("forceTemporarySession", Severity.ERROR),
    ]


def test_passcode_grace_period_is_0_to_14400_seconds() -> None:
    """R-067: 'Enter the number of seconds from 0 to 14,400' (003_729e51c15a5a5608.txt:4946)."""
    assert validate_profile(replace(SHARED_IPAD, passcode_lock_grace_period_in_seconds=0)) == []
    assert validate_profile(replace(SHARED_IPAD, passcode_lock_grace_period_in_seconds=14_400)) == []
    assert _only(replace(SHARED_IPAD, passcode_lock_grace_period_in_seconds=14_401)).source.endswith(":4946")


def test_session_timeouts_are_at_least_30_seconds_or_never() -> None:
    """R-067: minimum 30; blank or 0 means never (003_729e51c15a5a5608.txt:4947, 4955)."""
    for seconds in (0, 30, 3600):
        assert validate_profile(replace(SHARED_IPAD, user_session_timeout_in_seconds=seconds)) == []
    assert _only(replace(SHARED_IPAD, user_session_timeout_in_seconds=29)).setting == "userSessionTimeoutInSeconds"
    temporary = replace(SHARED_IPAD, force_temporary_session=True, temporary_session_timeout_in_seconds=10)
    assert _only(temporary).setting == "temporarySessionTimeoutInSeconds"


def test_temporary_session_timeout_needs_temporary_sessions_only() -> None:
    """R-067: available when 'Require Shared iPad temporary session only' is Yes (003:4957)."""
    assert _only(replace(SHARED_IPAD, temporary_session_timeout_in_seconds=300)).source.endswith(":4957")


def test_temporary_sessions_only_cancel_user_settings() -> None:
    """R-068: temporary-session-only cancels cached users, grace period and user timeout (003:4950-4954)."""
    settings = replace(
        SHARED_IPAD,
        force_temporary_session=True,
        shared_ipad_maximum_user_count=5,
        passcode_lock_grace_period_in_seconds=60,
        user_session_timeout_in_seconds=600,
    )
    assert _problems(settings) == [
        ("sharedIPadMaximumUserCount", Severity.WARNING),
        ("passcodeLockGracePeriodInSeconds", Severity.WARNING),
        ("userSessionTimeoutInSeconds", Severity.WARNING),
    ]


def test_more_than_24_cached_users_is_warned_about() -> None:
    """R-067: up to 24 users on a 32-GB or 64-GB device (003_729e51c15a5a5608.txt:4942)."""
    assert validate_profile(replace(SHARED_IPAD, shared_ipad_maximum_user_count=24)) == []
    assert _problems(replace(SHARED_IPAD, shared_ipad_maximum_user_count=30)) == [
        ("sharedIPadMaximumUserCount", Severity.WARNING)
    ]
    assert _problems(replace(SHARED_IPAD, shared_ipad_maximum_user_count=-1)) == [
        ("sharedIPadMaximumUserCount", Severity.ERROR)
    ]


def test_pairing_by_certificate_needs_a_certificate() -> None:
    """R-071: 'Allow Apple Configurator by certificate' needs a certificate (003:4964, 4972)."""
    by_certificate = replace(KIOSK, itunes_pairing_mode=PairingMode.REQUIRES_CERTIFICATE)
    assert _only(by_certificate).setting == "managementCertificates"
    assert validate_profile(replace(by_certificate, management_certificates=(CERT,))) == []
    unused = replace(KIOSK, management_certificates=(CERT,))
    assert _problems(unused) == [("managementCertificates", Severity.WARNING)]


def test_sync_with_computers_is_an_ios_setting() -> None:
    """The macOS profile has no Sync with computers (003_729e51c15a5a5608.txt:6741-6764)."""
    assert _only(replace(MAC, itunes_pairing_mode=PairingMode.DISALLOW)).setting == "iTunesPairingMode"


def test_device_name_template_is_validated_in_the_profile() -> None:
    """R-072: ≤ 63 characters including the variables (003:4975), variables {{SERIAL}}/{{DEVICETYPE}} (003:966)."""
    assert validate_profile(replace(KIOSK, device_name_template="{{DEVICETYPE}}-{{SERIAL}}")) == []
    assert validate_profile(replace(KIOSK, device_name_template="")) == []  # No: Apple's default name
    assert _only(replace(KIOSK, device_name_template="x" * 64)).setting == "deviceNameTemplate"


def test_device_name_templates_name_iphones_ipads_and_ipods() -> None:
    """'This feature supports iPhone, iPad, and iPod Touch' (003_729e51c15a5a5608.txt:4975)."""
    assert _only(replace(MAC, device_name_template="{{SERIAL}}")).setting == "deviceNameTemplate"


def test_cellular_plan_needs_an_https_carrier_url_on_ios() -> None:
    """R-073: activate cellular data plan with the carrier's activation server URL (003:4977)."""
    assert validate_profile(replace(KIOSK, carrier_activation_url="https://carrier.example/activate")) == []
    assert _only(replace(KIOSK, carrier_activation_url="carrier.example")).setting == "carrierActivationUrl"
    assert _only(replace(MAC, carrier_activation_url="https://carrier.example")).setting == "carrierActivationUrl"


def test_hidden_screens_must_exist_on_the_platform() -> None:
    """Pane lists differ per platform (003_729e51c15a5a5608.txt:4994-5021, 6781-6800)."""
    assert validate_profile(replace(MAC, hidden_panes=frozenset({"FileVault", "Siri"}))) == []
    assert _only(replace(KIOSK, hidden_panes=frozenset({"FileVault"}))).setting == "fileVaultDisabled"
    assert _only(replace(MAC, hidden_panes=frozenset({"Passcode"}))).setting == "passCodeDisabled"


def test_unknown_skip_keys_are_refused_and_newer_apple_ones_pass() -> None:
    """Skip keys are Apple's (apple-device-management other/skipkeys.yaml); 'Toggle All' hides them (003:5817)."""
    assert _only(replace(KIOSK, hidden_panes=frozenset({"Bogus"}))).setting == "enabledSkipKeys"
    assert "Intelligence" in OTHER_APPLE_SKIP_KEYS
    assert validate_profile(replace(KIOSK, hidden_panes=frozenset({"Intelligence", "AppStore"}))) == []


def test_school_profiles_need_department_and_phone() -> None:
    """Apple School Manager marks Department and Department Phone required (003_729e51c15a5a5608.txt:5811-5813)."""
    assert _problems(KIOSK, program=Program.SCHOOL_MANAGER) == [
        ("supportDepartment", Severity.ERROR),
        ("supportPhoneNumber", Severity.ERROR),
    ]
    school = replace(KIOSK, support_department="IT", support_phone_number="+33 1 23 45 67 89")
    assert validate_profile(school, program=Program.SCHOOL_MANAGER) == []


def test_dep_profile_fields_for_a_locked_shared_ipad() -> None:
    """F-04 step 5 / catalog C §1.4 [HINT]: settings become Apple's DEP profile (apple-protocols.md §7.4;
    locked 003:964, department 003:968-969, screens 003:970)."""
    settings = replace(
        SHARED_IPAD,
        profile_removal_disabled=True,
        is_mandatory=True,
        await_device_configured_confirmation=True,
        itunes_pairing_mode=PairingMode.REQUIRES_CERTIFICATE,
        management_certificates=(CERT,),
        support_department="IT",
        support_phone_number="+33 1 23 45 67 89",
        support_email_address="help@contoso.com",
        hidden_panes=frozenset({"Siri", "AppleID", "Location"}),
    )
    assert validate_profile(settings) == []
    assert to_dep_profile_fields(settings, enrollment_url=ENROLL_URL, anchor_certs=[b"anchor"]) == {
        "profile_name": "Kiosks",
        "url": ENROLL_URL,
        "is_supervised": True,
        "is_mdm_removable": False,
        "is_mandatory": True,
        "await_device_configured": True,
        "skip_setup_items": ["AppleID", "Location", "Siri"],
        "is_multi_user": True,
        "allow_pairing": False,
        "supervising_host_certs": [base64.b64encode(CERT).decode()],
        "department": "IT",
        "support_phone_number": "+33 1 23 45 67 89",
        "support_email_address": "help@contoso.com",
        "anchor_certs": [base64.b64encode(b"anchor").decode()],
    }


def test_dep_profile_for_sync_with_computers() -> None:
    """R-071: 'Deny all' blocks iTunes and Apple Configurator (003:4968); default pairing is allowed (§7.4)."""
    assert to_dep_profile_fields(KIOSK, enrollment_url=ENROLL_URL)["allow_pairing"] is True
    denied = to_dep_profile_fields(replace(KIOSK, itunes_pairing_mode=PairingMode.DISALLOW), enrollment_url=ENROLL_URL)
    assert denied["allow_pairing"] is False
    assert "supervising_host_certs" not in denied


def test_modern_authentication_sends_the_web_sign_in_url() -> None:
    """R-045: Setup Assistant with modern authentication (003:4859) uses configuration_web_url (§7.6)."""
    modern = replace(WITH_AFFINITY, modern_authentication=True)
    dep = to_dep_profile_fields(modern, enrollment_url=ENROLL_URL, configuration_web_url="https://mdm.example.com/web")
    assert dep["configuration_web_url"] == "https://mdm.example.com/web"
    assert "configuration_web_url" not in to_dep_profile_fields(COMPANY_PORTAL, enrollment_url=ENROLL_URL)
    with pytest.raises(ValueError, match="configuration_web_url"):
        to_dep_profile_fields(modern, enrollment_url=ENROLL_URL)


def test_mac_dep_profile_has_no_ios_only_keys() -> None:
    """The macOS profile has no Shared iPad or Sync with computers (003_729e51c15a5a5608.txt:6741-6800)."""
    dep = to_dep_profile_fields(MAC, enrollment_url=ENROLL_URL)
    assert "is_multi_user" not in dep
    assert "allow_pairing" not in dep
    assert dep["is_mdm_removable"] is True


_SETTINGS = st.builds(
    AdeProfileSettings,
    display_name=st.text(max_size=130),
    platform=st.sampled_from(Platform),
    requires_user_authentication=st.booleans(),
    enable_authentication_via_company_portal=st.booleans(),
    modern_authentication=st.booleans(),
    install_company_portal=st.booleans(),
    company_portal_vpp_token_id=st.none() | st.just("vpp-1"),
    enable_single_app_enrollment_mode=st.booleans(),
    supervised_mode_enabled=st.booleans(),
    profile_removal_disabled=st.booleans(),
    itunes_pairing_mode=st.sampled_from(PairingMode),
    management_certificates=st.sampled_from([(), (CERT,)]),
    enable_shared_ipad=st.booleans(),
    shared_ipad_maximum_user_count=st.none() | st.integers(-5, 40),
    passcode_lock_grace_period_in_seconds=st.none() | st.integers(-10, 20_000),
    user_session_timeout_in_seconds=st.none() | st.integers(-10, 100),
    force_temporary_session=st.booleans(),
    temporary_session_timeout_in_seconds=st.none() | st.integers(-10, 100),
    device_name_template=st.none() | st.text(max_size=70),
    carrier_activation_url=st.none() | st.sampled_from(["https://c.example/a", "http://c.example", ""]),
    support_email_address=st.sampled_from(["", "help@contoso.com", "nobody"]),
    hidden_panes=st.frozensets(st.sampled_from([*PANES, "Intelligence", "Bogus"]), max_size=6),
    minimum_os_version=st.none() | st.sampled_from(["17", "17.4.1", "seventeen"]),
)


@given(settings=_SETTINGS)
def test_valid_profiles_always_make_a_dep_profile_apple_accepts(settings: AdeProfileSettings) -> None:
    """Every problem names a Graph property (anchors.md §5); error-free profiles give DEP JSON that passes Apple's
    flag check: not removable only when supervised (apple-protocols.md §7.4 FLAGS_INVALID; 003:4922)."""
    problems = validate_profile(normalize_profile(settings))
    pane_properties = {pane.graph_property for pane in PANES.values()}
    assert all(
        problem.setting in VERIFIED_GRAPH_PROPERTIES | MUSTER_PROPERTIES | pane_properties for problem in problems
    )
    assert all(problem.source for problem in problems)
    if any(problem.severity is Severity.ERROR for problem in problems):
        return
    dep = to_dep_profile_fields(settings, enrollment_url=ENROLL_URL, configuration_web_url="https://w.example")
    json.dumps(dep)
    assert dep["is_supervised"] or dep["is_mdm_removable"]
    assert len(str(dep["profile_name"])) <= 125
    assert not dep.get("is_multi_user") or settings.authentication_method is None


def test_minimum_os_version_compares_number_by_number() -> None:
    """apple-protocols.md §7.5: the software-update gate compares versions, not strings."""
    from muster.domain.ade_profiles import os_version_below

    assert os_version_below("17.5", "18.0") and os_version_below("17.9", "17.10")
    assert not os_version_below("17.10", "17.9") and not os_version_below("18", "18.0.0")
    assert os_version_below("garbage", "17")
    problems = validate_profile(AdeProfileSettings(display_name="x", minimum_os_version="seventeen"))
    assert [p.setting for p in problems] == ["minimumOsVersion"]
