"""Events Muster announces to the outside (webhooks): the catalogue and the publisher port.

The device path publishes right after the state change it reports, before answering the device; publishing only
writes to the outbox, delivery happens later in the background (see `muster.services.webhooks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol


class EventType(StrEnum):
    DEVICE_ENROLLED = "deviceEnrolled"  # first TokenUpdate of a device-channel enrollment
    DEVICE_CHECKED_OUT = "deviceCheckedOut"  # the device said CheckOut (MDM profile removed)
    COMMAND_COMPLETED = "commandCompleted"  # a command result (Acknowledged, Error, CommandFormatError, NotNow)


class EventPublisher(Protocol):
    async def publish(self, *, org_id: str, event_type: EventType, data: Mapping[str, Any]) -> None:
        """Record the event for every subscription that wants it."""
