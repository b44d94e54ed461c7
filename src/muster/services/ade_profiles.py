"""ADE enrollment profiles (Graph `depIOSEnrollmentProfile` / `depMacOSEnrollmentProfile`) and their assignment.

A profile is validated against the seeds' rules, defined in ABM (Apple keeps the profile, Muster keeps the
settings), and assigned to serial numbers. Apple answers an assignment per serial, inside an HTTP 200: every
FAILED, NOT_ACCESSIBLE or THROTTLED serial is recorded on its device, shown to the admin and retried after a
cooldown, the gap Fleet's users complain about most.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from muster.domain import ade_tokens as token_rules
from muster.domain.ade_profiles import (
    Platform,
    Severity,
    normalize_profile,
    to_dep_profile_fields,
    validate_profile,
)
from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotAllowed, NotFound
from muster.domain.rbac import Scope
from muster.pki.secretbox import SecretBox
from muster.protocols.apple.dep import DepProfile
from muster.protocols.apple.dep_errors import DepApiError
from muster.protocols.errors import ParseError
from muster.services.ade_ports import DepApiFactory
from muster.services.ade_profile_settings import settings_from_graph, settings_to_graph
from muster.services.ade_sync import open_credentials
from muster.services.ade_tokens import TokenStore
from muster.services.audit import AuditSink

# Apple's device families, by the profile platform that serves them.
FAMILIES = {Platform.IOS: ("iPhone", "iPad", "iPod"), Platform.MACOS: ("Mac",)}
RETRY_COOLDOWN = timedelta(minutes=15)


@dataclass(frozen=True)
class AdeProfileRow:
    id: str
    org_id: str
    token_id: str
    platform: str
    display_name: str
    description: str | None
    settings: dict[str, Any]
    abm_profile_uuid: str | None
    defined_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PendingAssignment:
    token_id: str
    profile_id: str
    serial_number: str
    attempts: int


class AdeProfileStore(Protocol):
    async def add(self, row: AdeProfileRow, tag_ids: Sequence[str]) -> None: ...
    async def save(self, row: AdeProfileRow) -> None: ...
    async def get(self, org_id: str, profile_id: str) -> AdeProfileRow | None: ...
    async def list_for_token(self, token_id: str, scope: Scope) -> list[AdeProfileRow]: ...
    async def count(self, token_id: str) -> int: ...
    async def delete(self, profile_id: str) -> None: ...
    async def set_default(self, token_id: str, *, platform: str, profile_id: str) -> None: ...
    async def unassigned_serials(self, token_id: str, families: Sequence[str]) -> list[str]: ...
    async def serials_of(self, profile_id: str) -> list[str]: ...
    async def known_serials(self, token_id: str, serials: Sequence[str]) -> set[str]: ...
    async def record_assignment(
        self, token_id: str, profile_id: str, results: Mapping[str, str], *, now: datetime, cooldown: timedelta
    ) -> None: ...
    async def failed_due(self, now: datetime, limit: int = ...) -> list[PendingAssignment]: ...


@dataclass(frozen=True)
class AssignmentOutcome:
    succeeded: list[str]
    failed: dict[str, str]


class AdeProfiles:
    def __init__(
        self,
        *,
        store: AdeProfileStore,
        tokens: TokenStore,
        secrets: SecretBox,
        api: DepApiFactory,
        enrollment_url: str,
        configuration_web_url: str,
        anchor_certificates: Sequence[bytes],
        audit: AuditSink,
        clock: Clock,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._secrets = secrets
        self._api = api
        self._enrollment_url = enrollment_url
        self._configuration_web_url = configuration_web_url  # sent only with modern authentication
        self._anchors = anchor_certificates
        self._audit = audit
        self._clock = clock

    async def create(
        self,
        *,
        org_id: str,
        token_id: str,
        platform: Platform,
        body: Mapping[str, Any],
        actor: str,
        tag_ids: Sequence[str] = (),
    ) -> tuple[AdeProfileRow, list[str]]:
        """Validate, define in ABM, store; returns the profile and the warnings the admin should read."""
        await self._token(org_id, token_id)
        decision = token_rules.profile_limit_decision(await self._store.count(token_id))
        if not decision.allowed:
            raise NotAllowed(decision.reason)
        now = self._clock.now()
        row = AdeProfileRow(str(uuid.uuid4()), org_id, token_id, platform.value, "", None, {}, None, None, now, now)
        row, warnings = await self._define(row, body)
        await self._store.add(row, tag_ids)
        await self._audit.admin_event(
            actor=actor,
            activity="createDepEnrollmentProfile",
            target=row.id,
            detail={"token": token_id, "name": row.display_name},
        )
        return row, warnings

    async def update(
        self, *, org_id: str, profile_id: str, body: Mapping[str, Any], actor: str
    ) -> tuple[AdeProfileRow, list[str]]:
        """Re-define the profile in ABM and re-assign its devices (they pick it up at their next reset)."""
        current = await self.get(org_id, profile_id)
        merged = {**current.settings, **body}
        row, warnings = await self._define(replace(current, updated_at=self._clock.now()), merged)
        await self._store.save(row)
        serials = await self._store.serials_of(row.id)
        if serials:
            await self._assign(row, serials)
        await self._audit.admin_event(
            actor=actor, activity="updateDepEnrollmentProfile", target=row.id, detail={"reassigned": len(serials)}
        )
        return row, warnings

    async def get(self, org_id: str, profile_id: str) -> AdeProfileRow:
        row = await self._store.get(org_id, profile_id)
        if row is None:
            raise NotFound(f"enrollment profile {profile_id} not found")
        return row

    async def list_for_token(self, org_id: str, token_id: str, scope: Scope) -> list[AdeProfileRow]:
        """The token's profiles that carry a tag within `scope`."""
        await self._token(org_id, token_id)
        return await self._store.list_for_token(token_id, scope)

    async def delete(self, *, org_id: str, profile_id: str, actor: str) -> None:
        row = await self.get(org_id, profile_id)
        if await self._store.serials_of(row.id):
            raise NotAllowed("Devices are assigned to this profile: assign them another profile first.")
        await self._store.delete(row.id)
        await self._audit.admin_event(actor=actor, activity="deleteDepEnrollmentProfile", target=row.id, detail={})

    async def set_default(self, *, org_id: str, profile_id: str, actor: str) -> None:
        """New devices of the profile's platform get it automatically (the token's default profile)."""
        row = await self.get(org_id, profile_id)
        await self._store.set_default(row.token_id, platform=row.platform, profile_id=row.id)
        await self._audit.admin_event(actor=actor, activity="setDefaultProfile", target=row.id, detail={})
        await self.assign_defaults(row.token_id)

    async def assign(self, *, org_id: str, profile_id: str, serials: Sequence[str], actor: str) -> AssignmentOutcome:
        row = await self.get(org_id, profile_id)
        unknown = set(serials) - await self._store.known_serials(row.token_id, serials)
        if unknown:
            raise InvalidInput(f"not devices of this token: {', '.join(sorted(unknown)[:10])}")
        outcome = await self._assign(row, serials)
        await self._audit.admin_event(
            actor=actor,
            activity="updateDeviceProfileAssignment",
            target=row.id,
            detail={"devices": len(serials), "failed": len(outcome.failed)},
        )
        return outcome

    async def assign_defaults(self, token_id: str) -> None:
        """After a sync: new devices without a profile get their platform's default profile."""
        token = await self._tokens.get_by_id(token_id)
        if token is None:
            return
        for platform, default_id in (
            (Platform.IOS, token.default_ios_profile_id),
            (Platform.MACOS, token.default_macos_profile_id),
        ):
            if default_id is None:
                continue
            serials = await self._store.unassigned_serials(token_id, FAMILIES[platform])
            profile = await self._store.get(token.org_id, default_id)
            if serials and profile is not None:
                await self._assign(profile, serials)

    async def retry_failed(self) -> int:
        """The background job: retry serials whose assignment failed, once their cooldown is over."""
        pending = await self._store.failed_due(self._clock.now())
        by_profile: dict[tuple[str, str], list[str]] = defaultdict(list)
        for item in pending:
            by_profile[(item.token_id, item.profile_id)].append(item.serial_number)
        for (_token_id, profile_id), serials in by_profile.items():
            token = await self._tokens.get_by_id(_token_id)
            profile = await self._store.get(token.org_id, profile_id) if token else None
            if profile is not None:
                await self._assign(profile, serials)
        return len(pending)

    async def _assign(self, row: AdeProfileRow, serials: Sequence[str]) -> AssignmentOutcome:
        if row.abm_profile_uuid is None:
            raise NotAllowed("the profile is not defined in Apple Business Manager yet")
        token = await self._tokens.get_by_id(row.token_id)
        assert token is not None and token.credentials_encrypted is not None
        api = self._api(open_credentials(self._secrets, token.credentials_encrypted))
        try:
            result = await api.assign_profile(row.abm_profile_uuid, serials)
            statuses = dict(result.devices)
        except DepApiError as error:  # the whole call failed: every serial is retried later
            statuses = dict.fromkeys(serials, error.code or "FAILED")
        finally:
            await api.aclose()
        for serial in serials:
            statuses.setdefault(serial, "FAILED")
        await self._store.record_assignment(
            row.token_id, row.id, statuses, now=self._clock.now(), cooldown=RETRY_COOLDOWN
        )
        failed = {serial: status for serial, status in statuses.items() if status != "SUCCESS"}
        return AssignmentOutcome([s for s, status in statuses.items() if status == "SUCCESS"], failed)

    async def _define(self, row: AdeProfileRow, body: Mapping[str, Any]) -> tuple[AdeProfileRow, list[str]]:
        platform = Platform(row.platform)
        settings = normalize_profile(settings_from_graph(body, platform=platform))
        problems = validate_profile(settings)
        errors = [f"{p.setting}: {p.message}" for p in problems if p.severity is Severity.ERROR]
        if errors:
            raise InvalidInput("; ".join(errors))
        token = await self._tokens.get_by_id(row.token_id)
        if token is None or token.credentials_encrypted is None:
            raise NotAllowed("upload the token's server token before creating profiles")
        fields = to_dep_profile_fields(
            settings,
            enrollment_url=self._enrollment_url,
            configuration_web_url=self._configuration_web_url,
            anchor_certs=self._anchors,
        )
        try:
            profile = DepProfile.from_json(fields)
        except ParseError as error:
            raise InvalidInput(error.reason) from None
        api = self._api(open_credentials(self._secrets, token.credentials_encrypted))
        try:
            abm_uuid, _ = await api.define_profile(profile)
        except DepApiError as error:
            raise InvalidInput(f"Apple refused the profile: {error}") from None
        finally:
            await api.aclose()
        stored = replace(
            row,
            display_name=settings.display_name,
            description=settings.description or None,
            settings=settings_to_graph(settings),
            abm_profile_uuid=abm_uuid,
            defined_at=self._clock.now(),
        )
        if settings.is_default:
            await self._store.set_default(row.token_id, platform=row.platform, profile_id=row.id)
        return stored, [f"{p.setting}: {p.message}" for p in problems if p.severity is Severity.WARNING]

    async def _token(self, org_id: str, token_id: str) -> None:
        if await self._tokens.get(org_id, token_id) is None:
            raise NotFound(f"enrollment program token {token_id} not found")
