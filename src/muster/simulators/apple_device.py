"""A virtual Apple device that enrolls and is managed over Apple's real MDM protocol.

It verifies and reads the signed enrollment profile, obtains its identity over SCEP, signs every check-in and
command report with `Mdm-Signature`, answers commands with plausible inventory, wakes when the fake APNs
delivers a push, and ends as Apple specifies after `EraseDevice` (it erases: no more contact) or after the
removal of its enrollment profile (it sends `CheckOut` and forgets the server).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols import scep
from muster.protocols.apple import checkin, commands
from muster.protocols.apple.checkin import EnrollmentIdentity, EnrollmentKind
from muster.protocols.apple.machine_info import MachineInfo, encode_machine_info
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.protocols.cms import sign_detached
from muster.simulators.apple_answers import IPHONE, DeviceFacts, DeviceModel, certificate_list_entry, profile_list_entry
from muster.simulators.apple_identity import factory_identity
from muster.simulators.apple_profile import InstalledEnrollmentProfile, read_enrollment_profile

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
CONNECT_TYPE = "application/x-apple-aspen-mdm; charset=UTF-8"
MOBILECONFIG_TYPE = "application/x-apple-aspen-config"


class DeviceProtocolError(Exception):
    """The server answered something a real device would give up on."""


@dataclass
class VirtualAppleDevice:
    http: httpx.AsyncClient
    model: DeviceModel = IPHONE
    key: rsa.RSAPrivateKey | None = None  # pre-generate keys for load runs
    not_now_once: set[str] = field(default_factory=set)  # RequestTypes answered NotNow the first time
    udid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    serial_number: str = field(default_factory=lambda: "F" + secrets.token_hex(5).upper()[:11])
    push_token: bytes = field(default_factory=lambda: os.urandom(32))
    push_magic: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    unlock_token: bytes = field(default_factory=lambda: os.urandom(48))
    supervised: bool = False
    shared_ipad: bool = False

    def __post_init__(self) -> None:
        self.profile: InstalledEnrollmentProfile | None = None
        self.identity_certificate: x509.Certificate | None = None
        self.facts = DeviceFacts(
            udid=self.udid,
            serial_number=self.serial_number,
            model=self.model,
            device_name=f"{self.model.model_name} {self.serial_number[-4:]}",
            imei="35" + "".join(secrets.choice("0123456789") for _ in range(13))
            if self.model.product_name.startswith("iPhone")
            else None,
            supervised=self.supervised,
            multi_user=self.shared_ipad,
            wifi_mac=":".join(f"{b:02x}" for b in os.urandom(6)),
        )
        self.enrolled = False
        self.erased = False
        self.awaiting_configuration = False  # held in Setup Assistant until DeviceConfigured
        self.passcode_cleared = False
        self.locked = False
        self.shared_configuration: dict[str, Any] | None = None  # the last SharedDeviceConfiguration item
        self.handled: list[tuple[str, str, str]] = []  # (CommandUUID, RequestType, Status sent)
        self._identity = EnrollmentIdentity(self.udid, None, EnrollmentKind.DEVICE)
        self._poll_lock = asyncio.Lock()

    @property
    def token_hex(self) -> str:
        return self.push_token.hex()

    # -- enrollment -------------------------------------------------------------------------------------------

    def install_profile(self, signed_profile: bytes) -> InstalledEnrollmentProfile:
        self.profile = read_enrollment_profile(signed_profile)
        return self.profile

    async def ade_enroll(
        self, enrollment_url: str, *, await_configuration: bool = False, credentials: tuple[str, str] | None = None
    ) -> None:
        """Automated Device Enrollment from Setup Assistant: POST the signed MachineInfo to the DEP profile's
        `url`, install the profile it answers with, enroll, and (when the DEP profile says so) wait in Setup
        Assistant until the server sends `DeviceConfigured` (apple-protocols.md §7.5).

        A 401 with a Basic challenge is legacy authentication: Setup Assistant asks the user, who types
        `credentials` (user name, password), and posts again with them."""
        body = self.signed_machine_info()
        headers = {"Content-Type": "application/pkcs7-signature"}
        response = await self.http.post(enrollment_url, content=body, headers=headers)
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("basic ") and credentials is not None:
            encoded = base64.b64encode(":".join(credentials).encode()).decode()
            response = await self.http.post(
                enrollment_url, content=body, headers=headers | {"Authorization": f"Basic {encoded}"}
            )
        _expect(response, 200, "ADE profile request")
        await self._enroll_from_setup_assistant(response.content, await_configuration)

    async def ade_web_enroll(
        self,
        configuration_web_url: str,
        user: Callable[[httpx.AsyncClient, httpx.Response], Awaitable[httpx.Response]],
        *,
        await_configuration: bool = False,
    ) -> None:
        """Setup Assistant with modern authentication (apple-protocols.md §7.6): open `configuration_web_url` in
        a web view with the signed MachineInfo in `x-apple-aspen-deviceinfo`; `user` navigates from the first
        page until the server answers the enrollment profile, which must come from the same domain."""
        info = base64.b64encode(self.signed_machine_info()).decode()
        page = await self.http.get(
            configuration_web_url, headers={"x-apple-aspen-deviceinfo": info}, follow_redirects=True
        )
        _expect(page, 200, "configuration web view")
        final = await user(self.http, page)
        _expect(final, 200, "configuration web view")
        if final.headers.get("content-type", "").split(";")[0] != MOBILECONFIG_TYPE:
            raise DeviceProtocolError(f"the web view ended on a page, not a profile: {final.text[:200]!r}")
        if _domain(str(final.url)) != _domain(configuration_web_url):
            raise DeviceProtocolError("the profile came from another domain than configuration_web_url")
        await self._enroll_from_setup_assistant(final.content, await_configuration)

    def signed_machine_info(self) -> bytes:
        """The MachineInfo plist signed with the device's factory identity, as Setup Assistant sends it."""
        certificate, key = factory_identity(self.udid)
        info = MachineInfo(
            udid=self.udid,
            serial=self.serial_number,
            product=self.model.product_name,
            version=self.model.build_version,
            os_version=self.model.os_version,
            imei=self.facts.imei,
            language="en",
        )
        return encode_machine_info(info, certificate=certificate, key=key)

    async def _enroll_from_setup_assistant(self, signed_profile: bytes, await_configuration: bool) -> None:
        self.supervised = True  # ADE devices are supervised
        self.facts.supervised = True
        self.awaiting_configuration = await_configuration
        await self.enroll(signed_profile)

    async def enroll(self, signed_profile: bytes | None = None) -> None:
        """Install the profile, get an identity over SCEP, Authenticate, TokenUpdate."""
        if signed_profile is not None:
            self.install_profile(signed_profile)
        profile = self._require_profile()
        self.identity_certificate = await self.request_certificate(profile.scep_challenge)
        await self.checkin(
            "Authenticate",
            Topic=profile.topic,
            SerialNumber=self.serial_number,
            OSVersion=self.model.os_version,
            BuildVersion=self.model.build_version,
            ProductName=self.model.product_name,
            IMEI=self.facts.imei,
        )
        await self.checkin(
            "TokenUpdate",
            Topic=profile.topic,
            Token=self.push_token,
            PushMagic=self.push_magic,
            UnlockToken=self.unlock_token,
            AwaitingConfiguration=True if self.awaiting_configuration else None,
        )
        self.enrolled = True

    async def request_certificate(self, challenge: str) -> x509.Certificate:
        """SCEP PKCSReq with the profile's challenge; raises DeviceProtocolError on a SCEP failure."""
        profile = self._require_profile()
        ca_response = await self.http.get(profile.scep_url, params={"operation": "GetCACert"})
        _expect(ca_response, 200, "GetCACert")
        ca = x509.load_der_x509_certificate(ca_response.content)
        key = self.key or generate_rsa_key(profile.scep_key_size if profile.scep_key_size >= 2048 else 2048)
        self.key = key
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.udid)])
        csr = (
            x509.CertificateSigningRequestBuilder(subject)
            .add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
            .sign(key, hashes.SHA256())
        )
        signer = self_signed_certificate(key, self.udid)
        body, _ = scep.build_pkcs_req(
            csr,
            signer_certificate=signer,
            signer_key=key,
            recipient_certificate=ca,
            transaction_id=scep.transaction_id_for(key.public_key()),
        )
        response = await self.http.post(
            profile.scep_url,
            params={"operation": "PKIOperation"},
            content=body,
            headers={"Content-Type": "application/x-pki-message"},
        )
        _expect(response, 200, "PKIOperation")
        reply = scep.parse_cert_rep(
            response.content, requester_certificate=signer, requester_key=key, ca_certificate=ca
        )
        if reply.status is not scep.PkiStatus.SUCCESS or reply.certificate is None:
            raise DeviceProtocolError(f"SCEP refused the request (failInfo {reply.fail_info})")
        return reply.certificate

    # -- the MDM protocol -------------------------------------------------------------------------------------

    async def checkin(self, message_type: str, **fields: Any) -> httpx.Response:
        body = checkin.encode_checkin(message_type, checkin.identity_keys(self._identity), **fields)
        response = await self._put(self._require_profile().checkin_url, body, CHECKIN_TYPE)
        _expect(response, 200, message_type)
        return response

    async def poll(self) -> int:
        """One MDM session: Idle, then answer commands until the server has none. Returns commands handled."""
        if not self.enrolled or self.erased:
            return 0
        async with self._poll_lock:
            handled = 0
            report = encode_report(CommandStatus.IDLE, checkin.identity_keys(self._identity))
            while True:
                response = await self._put(self._require_profile().server_url, report, CONNECT_TYPE)
                _expect(response, 200, "command request")
                if not response.content:
                    return handled
                command_uuid, command = commands.decode_command(response.content)
                report, after = self._answer(command_uuid, command)
                handled += 1
                if after is not None:  # erase or unenroll: report the result, then act on it
                    response = await self._put(self._require_profile().server_url, report, CONNECT_TYPE)
                    _expect(response, 200, "command result")
                    await after()
                    return handled

    def _answer(self, command_uuid: str, command: dict[str, Any]) -> tuple[bytes, Any]:
        request_type = command["RequestType"]
        keys = checkin.identity_keys(self._identity)
        if request_type in self.not_now_once:
            self.not_now_once.discard(request_type)
            self.handled.append((command_uuid, request_type, "NotNow"))
            return encode_report(CommandStatus.NOT_NOW, keys, command_uuid), None
        status, results, after = self._perform(request_type, command)
        self.handled.append((command_uuid, request_type, status.value))
        return encode_report(status, keys, command_uuid, **results), after

    def _perform(self, request_type: str, command: dict[str, Any]) -> tuple[CommandStatus, dict[str, Any], Any]:
        ok = CommandStatus.ACKNOWLEDGED
        profile = self._require_profile()
        match request_type:
            case "DeviceInformation":
                return ok, {"QueryResponses": self.facts.query_responses(command.get("Queries", []))}, None
            case "SecurityInfo":
                return ok, {"SecurityInfo": self.facts.security_info()}, None
            case "InstalledApplicationList":
                apps = self.facts.apps
                if command.get("ManagedAppsOnly"):
                    apps = [app for app in apps if app["Identifier"] in self.facts.managed_app_ids]
                return ok, {"InstalledApplicationList": apps}, None
            case "ProfileList":
                return ok, {"ProfileList": [profile_list_entry(profile.raw)]}, None
            case "CertificateList":
                entries = [certificate_list_entry(c, identity=False) for c in profile.roots]
                if self.identity_certificate is not None:
                    entries.append(certificate_list_entry(self.identity_certificate, identity=True))
                return (
                    ok,
                    {"CertificateList": [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]},
                    None,
                )
            case "Settings":
                for item in command.get("Settings", []):
                    if item.get("Item") == "DeviceName":
                        self.facts.device_name = item["DeviceName"]
                    elif item.get("Item") == "SharedDeviceConfiguration":
                        if not self.shared_ipad:
                            return _error(12070, "The device is not a Shared iPad.")
                        self.shared_configuration = dict(item)
                return (
                    ok,
                    {"Settings": [{"Item": i.get("Item"), "Status": "Acknowledged"} for i in command["Settings"]]},
                    None,
                )
            case "ClearPasscode":
                if command.get("UnlockToken") != self.unlock_token:
                    return _error(12028, "The unlock token is invalid.")
                self.passcode_cleared = True
                return ok, {}, None
            case "DeviceLock":
                self.locked = True
                return ok, {}, None
            case "EnableLostMode" | "DisableLostMode":
                if not self.supervised:
                    return _error(12081, "The device is not supervised.")
                self.facts.lost_mode = request_type == "EnableLostMode"
                return ok, {}, None
            case "UserList" | "LogOutUser" | "DeleteUser" if not self.shared_ipad:
                return _error(12070, "The device is not a Shared iPad.")
            case "UserList":
                return ok, {"Users": [dict(user) for user in self.facts.users]}, None
            case "LogOutUser":
                for user in self.facts.users:
                    user["IsLoggedIn"] = False
                return ok, {}, None
            case "DeleteUser":
                return self._delete_user(command)
            case "DeviceConfigured":
                self.awaiting_configuration = False
                return ok, {}, None
            case "EraseDevice":
                return ok, {}, self._erase
            case "RemoveProfile" if command.get("Identifier") == profile.identifier:
                return ok, {}, self._unenroll
            case (
                "RemoveProfile"
                | "InstallProfile"
                | "RestartDevice"
                | "ShutDownDevice"
                | "InstallApplication"
                | "RemoveApplication"
            ):
                return ok, {}, None
        return CommandStatus.COMMAND_FORMAT_ERROR, {}, None

    def _delete_user(self, command: dict[str, Any]) -> tuple[CommandStatus, dict[str, Any], Any]:
        """As a Shared iPad does: the signed-in user cannot be deleted, nor, without ForceDeletion, one whose data
        is still syncing to iCloud."""
        user = next((u for u in self.facts.users if u["UserName"] == command.get("UserName")), None)
        if user is None:
            return _error(12071, "The user does not exist on this device.")
        if user["IsLoggedIn"]:
            return _error(12072, "The user is logged in.")
        if user["HasDataToSync"] and not command.get("ForceDeletion"):
            return _error(12073, "The user has data to sync.")
        self.facts.users.remove(user)
        return CommandStatus.ACKNOWLEDGED, {}, None

    async def _erase(self) -> None:
        self.erased = True
        self.enrolled = False

    async def _unenroll(self) -> None:
        await self.checkin("CheckOut", Topic=self._require_profile().topic)
        self.enrolled = False

    async def _put(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if self.identity_certificate is not None and self.key is not None:
            signature = sign_detached(body, self.identity_certificate, self.key)
            headers["Mdm-Signature"] = base64.b64encode(signature).decode()
        return await self.http.put(url, content=body, headers=headers)

    def _require_profile(self) -> InstalledEnrollmentProfile:
        if self.profile is None:
            raise DeviceProtocolError("no enrollment profile installed")
        return self.profile


def _error(code: int, description: str) -> tuple[CommandStatus, dict[str, Any], None]:
    chain = [
        {
            "ErrorCode": code,
            "ErrorDomain": "MCMDMErrorDomain",
            "LocalizedDescription": description,
            "USEnglishDescription": description,
        }
    ]
    return CommandStatus.ERROR, {"ErrorChain": chain}, None


def _domain(url: str) -> list[str]:
    """The last two DNS labels of the URL's host (Apple's same-domain rule for the web view's profile)."""
    return (urlsplit(url).hostname or "").split(".")[-2:]


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise DeviceProtocolError(f"{what}: HTTP {response.status_code} {response.text[:200]!r}")
