"""Queueing commands for enrollments, and waking the devices that have something to do."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from muster.domain.ade_profiles import AdeProfileSettings
from muster.domain.clock import Clock
from muster.protocols.apple import commands as apple
from muster.protocols.apple.checkin import EnrollmentKind
from muster.services.ports import MdmStore, NewCommand
from muster.services.push import PushDispatcher

SYSTEM_ACTOR = "Muster"


def inventory_commands(kind: EnrollmentKind, *, personal: bool = False) -> list[dict[str, Any]]:
    """The commands queued right after enrollment so the admin sees the device's inventory. A personal device
    reports only the apps the organisation installed (OWN-06, OWN-08: 003_729e51c15a5a5608.txt:1005, 1109)."""
    user_enrollment = kind is EnrollmentKind.USER_ENROLLMENT
    return [
        apple.device_information(),
        apple.security_info(),
        apple.installed_application_list(managed_only=user_enrollment or personal),
        apple.profile_list(managed_only=user_enrollment),
        apple.certificate_list(managed_only=user_enrollment),
    ]


def shared_device_configuration(profile: AdeProfileSettings) -> dict[str, Any]:
    """The Settings command that applies an ADE profile's Shared iPad options (003:4930-4955)."""
    return apple.settings_shared_device_configuration(
        resident_users=profile.shared_ipad_maximum_user_count,
        temporary_session_only=profile.force_temporary_session,
        temporary_session_timeout=profile.temporary_session_timeout_in_seconds,
        user_session_timeout=profile.user_session_timeout_in_seconds,
    )


class CommandQueue:
    def __init__(self, *, store: MdmStore, pusher: PushDispatcher, clock: Clock) -> None:
        self._store = store
        self._pusher = pusher
        self._clock = clock

    async def enqueue(
        self,
        command: Mapping[str, Any],
        *,
        org_id: str,
        enrollment_ids: Sequence[str],
        created_by: str,
        action: str | None = None,
        push: bool = True,
    ) -> str:
        """Queue one command for many enrollments in one transaction; returns its CommandUUID."""
        [command_uuid] = await self._enqueue(
            [command], org_id=org_id, enrollment_ids=enrollment_ids, created_by=created_by, action=action
        )
        if push:
            self._pusher.request(enrollment_ids)
        return command_uuid

    async def queue_setup(
        self,
        *,
        org_id: str,
        enrollment_id: str,
        kind: EnrollmentKind,
        device_name: str | None,
        release_setup_assistant: bool,
        ade_profile: AdeProfileSettings | None = None,
        personal: bool = False,
    ) -> None:
        """What a newly enrolled device gets: inventory, its name (ADE template), its Shared iPad configuration
        (ADE profile) with the list of its users, and, when it waits in Setup Assistant for its final
        configuration, `DeviceConfigured` last, after everything else."""
        setup = inventory_commands(kind, personal=personal)
        if device_name:
            setup.append(apple.settings_device_name(device_name))
        if ade_profile is not None and ade_profile.enable_shared_ipad:
            setup.append(shared_device_configuration(ade_profile))
            setup.append(apple.user_list())
        if release_setup_assistant:
            setup.append(apple.device_configured())
        await self._enqueue(setup, org_id=org_id, enrollment_ids=[enrollment_id], created_by=SYSTEM_ACTOR)
        # The device asks for commands right after its first TokenUpdate; a push makes sure it does.
        self._pusher.request([enrollment_id])

    async def _enqueue(
        self,
        batch: Sequence[Mapping[str, Any]],
        *,
        org_id: str,
        enrollment_ids: Sequence[str],
        created_by: str,
        action: str | None = None,
    ) -> list[str]:
        new = []
        for command in batch:
            command_uuid = str(uuid.uuid4()).upper()
            new.append(
                NewCommand(
                    command_uuid=command_uuid,
                    request_type=str(command["RequestType"]),
                    body=apple.encode_command(command_uuid, command),
                    action=action,
                    enrollment_ids=enrollment_ids,
                )
            )
        await self._store.enqueue(new, org_id=org_id, created_by=created_by, now=self._clock.now())
        return [command.command_uuid for command in new]
