"""The Apple MDM device path: check-in messages and the command loop (apple-protocols.md §1, §2).

`AppleMdm` turns a device's body and identity certificate into a reply. It owns the rules (which message may
arrive on which channel, what each does to the enrollment, which command goes out next); the storage
transaction per message lives behind `MdmStore`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from muster.domain.ade_profiles import AdeProfileSettings, Platform
from muster.domain.clock import Clock
from muster.domain.commands import STATUS_FROM_REPORT
from muster.pki.secretbox import SecretBox
from muster.protocols.apple import checkin as wire
from muster.protocols.apple import plist
from muster.protocols.apple.checkin import EnrollmentIdentity, EnrollmentKind
from muster.protocols.apple.results import CommandReport, CommandStatus, decode_report
from muster.services import metrics
from muster.services.ade_profile_settings import settings_from_graph
from muster.services.apple_admission import AppleAdmission
from muster.services.device_auth import DeviceAuthenticator, DeviceCertificate, DeviceRequestRejected
from muster.services.enrollment_gate import EnrollmentRefused
from muster.services.events import EventPublisher, EventType
from muster.services.inventory import InventoryRecorder
from muster.services.ports import AuthenticateRecord, MdmStore, ResultRecord, TokenUpdateOutcome, TokenUpdateRecord
from muster.services.queueing import CommandQueue

BOOTSTRAP_PURPOSE = "bootstrap-token"
SECRET_KEYS = frozenset({"UnlockToken", "BootstrapToken"})
REDACTED = "[redacted]"
UNLOCK_PURPOSE = "unlock-token"


@dataclass(frozen=True)
class Reply:
    body: bytes = b""
    content_type: str = "application/xml; charset=UTF-8"


EMPTY = Reply()


class AppleMdm:
    def __init__(
        self,
        *,
        store: MdmStore,
        authenticator: DeviceAuthenticator,
        queue: CommandQueue,
        inventory: InventoryRecorder,
        secrets: SecretBox,
        push_topic: Callable[[], Awaitable[str | None]],
        clock: Clock,
        events: EventPublisher,
        admission: AppleAdmission,
    ) -> None:
        self._store = store
        self._admission = admission
        self._auth = authenticator
        self._queue = queue
        self._inventory = inventory
        self._secrets = secrets
        self._push_topic = push_topic
        self._clock = clock
        self._events = events

    # -- check-in ---------------------------------------------------------------------------------------------

    async def checkin(self, body: bytes, certificate: x509.Certificate | None) -> Reply:
        message: wire.CheckinMessage | None = None
        try:
            message = wire.decode_checkin(body)
            reply = await self._checkin(message, body, certificate)
        except Exception as error:
            metrics.CHECKINS.labels(metrics.checkin_type(message), metrics.failure_result(error)).inc()
            raise
        metrics.CHECKINS.labels(metrics.checkin_type(message), "ok").inc()
        return reply

    async def _checkin(self, message: wire.CheckinMessage, body: bytes, certificate: x509.Certificate | None) -> Reply:
        identity = message.identity
        device = await self._auth.identify(certificate, claimed=identity.id)
        now = self._clock.now()
        if isinstance(message, wire.Authenticate):
            return await self._authenticate(message, device, body, now)
        await self._auth.check_bound(device, identity.device_id)
        match message:
            case wire.TokenUpdate():
                return await self._token_update(message, device, body, now)
            case wire.CheckOut():
                await self._store.check_out(enrollment_id=identity.id, raw=body, now=now)
                await self._events.publish(
                    org_id=device.binding.org_id,
                    event_type=EventType.DEVICE_CHECKED_OUT,
                    data={"enrollmentId": identity.id, "udid": identity.device_id},
                )
            case wire.UserAuthenticate():
                return await self._user_authenticate(message, body, now)
            case wire.SetBootstrapToken():
                token = message.bootstrap_token
                encrypted = self._secrets.encrypt(token, purpose=BOOTSTRAP_PURPOSE) if token else None
                await self._store.set_bootstrap_token(
                    enrollment_id=identity.id, encrypted=encrypted, raw=_without_secrets(body, message.raw), now=now
                )
            case wire.GetBootstrapToken():
                return await self._get_bootstrap_token(identity, body, now)
            case wire.DeclarativeManagement():
                # Declarative management is not offered yet: keep what the device said, answer its token request.
                await self._store.save_checkin(
                    enrollment_id=identity.id, message_type="DeclarativeManagement", raw=body, now=now
                )
            case _:
                await self._store.save_checkin(
                    enrollment_id=identity.id, message_type=_message_type(message), raw=body, now=now
                )
                raise DeviceRequestRejected(f"check-in message {_message_type(message)} is not supported")
        return EMPTY

    async def _authenticate(
        self, message: wire.Authenticate, device: DeviceCertificate, body: bytes, now: datetime
    ) -> Reply:
        identity = message.identity
        if identity.is_user_channel:
            raise DeviceRequestRejected("Authenticate is only valid on the device channel")
        if message.topic != await self._push_topic():
            raise DeviceRequestRejected("Topic does not match this server's push certificate")
        await self._auth.check_new_enrollment(device, identity.id)
        fields = _authenticate_fields(message)
        try:
            await self._admission.admit(
                org_id=device.binding.org_id,
                enrollment_request_id=device.binding.enrollment_request_id,
                user_enrollment=identity.kind is EnrollmentKind.USER_ENROLLMENT,
                udid=identity.device_id if identity.kind is EnrollmentKind.DEVICE else None,
                fields=fields,
            )
        except EnrollmentRefused as refused:
            raise DeviceRequestRejected(refused.message, status=403) from None
        await self._store.authenticate(
            AuthenticateRecord(
                org_id=device.binding.org_id,
                enrollment_id=identity.id,
                device_key=identity.device_id,
                kind=identity.kind.value,
                topic=message.topic,
                certificate_fingerprint=device.fingerprint,
                enrollment_request_id=device.binding.enrollment_request_id,
                device_fields=fields,
                raw=body,
                now=now,
            )
        )
        return EMPTY

    async def _token_update(
        self, message: wire.TokenUpdate, device: DeviceCertificate, body: bytes, now: datetime
    ) -> Reply:
        identity = message.identity
        unlock = message.unlock_token
        outcome = await self._store.token_update(
            TokenUpdateRecord(
                org_id=device.binding.org_id,
                enrollment_id=identity.id,
                device_key=identity.device_id,
                parent_id=identity.device_id if identity.is_user_channel else None,
                kind=identity.kind.value,
                topic=message.topic,
                push_token=message.token,
                push_magic=message.push_magic,
                unlock_token_encrypted=self._secrets.encrypt(unlock, purpose=UNLOCK_PURPOSE) if unlock else None,
                awaiting_configuration=message.awaiting_configuration,
                user_short_name=message.user_short_name,
                user_long_name=message.user_long_name,
                enrollment_request_id=device.binding.enrollment_request_id,
                raw=_without_secrets(body, message.raw),
                now=now,
            )
        )
        if outcome.newly_enrolled and not identity.is_user_channel:
            metrics.ENROLLMENTS.labels("apple").inc()
            await self._queue.queue_setup(
                org_id=device.binding.org_id,
                enrollment_id=identity.id,
                kind=identity.kind,
                device_name=outcome.requested_name,
                ade_profile=_ade_profile(outcome),
                release_setup_assistant=message.awaiting_configuration,
                personal=outcome.personal,
            )
            await self._events.publish(
                org_id=device.binding.org_id,
                event_type=EventType.DEVICE_ENROLLED,
                data={"managedDeviceId": outcome.device_id, "enrollmentId": identity.id, "udid": identity.device_id},
            )
        return EMPTY

    async def _user_authenticate(self, message: wire.UserAuthenticate, body: bytes, now: datetime) -> Reply:
        """Manage every user without a separate password check (apple-protocols.md §1.6).

        First request: a zero-length DigestChallenge says no AuthToken is needed; the device then proceeds with
        the user channel. A second request (only sent after a non-empty challenge) gets an empty AuthToken.
        """
        await self._store.save_checkin(
            enrollment_id=message.identity.id, message_type="UserAuthenticate", raw=body, now=now
        )
        if message.digest_response is None:
            return Reply(wire.encode_user_authenticate_challenge(""))
        return Reply(wire.encode_user_authenticate_token(""))

    async def _get_bootstrap_token(self, identity: EnrollmentIdentity, body: bytes, now: datetime) -> Reply:
        await self._store.save_checkin(enrollment_id=identity.id, message_type="GetBootstrapToken", raw=body, now=now)
        encrypted = await self._store.bootstrap_token(identity.id)
        if encrypted is None:
            return EMPTY
        return Reply(wire.encode_bootstrap_token(self._secrets.decrypt(encrypted, purpose=BOOTSTRAP_PURPOSE)))

    # -- command loop -----------------------------------------------------------------------------------------

    async def connect(self, body: bytes, certificate: x509.Certificate | None) -> Reply:
        report = decode_report(body)
        identity = report.identity
        device = await self._auth.identify(certificate, claimed=identity.id)
        await self._auth.check_bound(device, identity.device_id)
        now = self._clock.now()
        idle = report.status is CommandStatus.IDLE
        metrics.COMMAND_REPORTS.labels(report.status.value).inc()
        completed, queued = await self._store.report_and_next(
            None if idle else _result_record(report, body, now), enrollment_id=identity.id, after_idle=idle, now=now
        )
        if completed is not None and completed.first_result and report.status is CommandStatus.ACKNOWLEDGED:
            await self._inventory.record(completed, report.raw, now=now)
        if completed is not None:
            await self._events.publish(
                org_id=device.binding.org_id,
                event_type=EventType.COMMAND_COMPLETED,
                data={
                    "managedDeviceId": completed.device_id,
                    "enrollmentId": identity.id,
                    "commandUuid": report.command_uuid,
                    "requestType": completed.request_type,
                    "status": report.status.value,
                },
            )
        return Reply(queued.body) if queued else EMPTY


def _result_record(report: CommandReport, body: bytes, now: datetime) -> ResultRecord:
    assert report.command_uuid is not None  # decode_report guarantees it for every status but Idle
    return ResultRecord(
        enrollment_id=report.identity.id,
        command_uuid=report.command_uuid,
        status=STATUS_FROM_REPORT[report.status.value].value,
        raw=body,
        error_chain=[vars(item) for item in report.error_chain] or None,
        now=now,
    )


def _without_secrets(body: bytes, message: Mapping[str, Any]) -> bytes:
    """The message as kept for the record: unlock and bootstrap tokens live only encrypted in their columns.

    Without a secret the body is kept as received; with one it is re-encoded as a binary plist, the one form that
    can hold whatever strings the device sent."""
    if SECRET_KEYS.isdisjoint(message):
        return body
    return plist.dumps({key: REDACTED if key in SECRET_KEYS else value for key, value in message.items()}, binary=True)


def _message_type(message: wire.CheckinMessage) -> str:
    return message.message_type if isinstance(message, wire.UnknownCheckin) else type(message).__name__


def _authenticate_fields(message: wire.Authenticate) -> dict[str, str]:
    fields = {
        "serial_number": message.serial_number,
        "os_version": message.os_version,
        "build_version": message.build_version,
        "product_name": message.product_name,
        "model": message.model,
        "model_name": message.model_name,
        "device_name": message.device_name,
        "imei": message.imei,
        "meid": message.meid,
    }
    return {key: value for key, value in fields.items() if value}


def _ade_profile(outcome: TokenUpdateOutcome) -> AdeProfileSettings | None:
    """The ADE profile the device enrolled with (validated when it was saved), if it enrolled through ADE."""
    if outcome.ade_profile_platform is None or outcome.ade_profile_settings is None:
        return None
    return settings_from_graph(outcome.ade_profile_settings, platform=Platform(outcome.ade_profile_platform))
