r"""Command-queue semantics (Apple MDM "connect" protocol, apple-protocols.md §2.3).

A command delivered to an enrollment moves through these states:

    queued --(handed to the device)--> sent --(Acknowledged)--> acknowledged
                                           \--(Error)--> error
                                           \--(CommandFormatError)--> commandFormatError
                                           \--(NotNow)--> notNow --(next Idle)--> sent ...
    queued/sent/notNow --(Authenticate, CheckOut, admin cancel)--> cancelled

A `sent` command with no result is handed out again once its lease lapses: the device retries results until it
gets a 2xx, so a missing result means the device never received the command.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    NOT_NOW = "notNow"
    ACKNOWLEDGED = "acknowledged"
    ERROR = "error"
    COMMAND_FORMAT_ERROR = "commandFormatError"
    CANCELLED = "cancelled"


PENDING = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.NOT_NOW})
FINAL = frozenset(DeliveryStatus) - PENDING

# How long a handed-out command waits for its result before it is handed out again.
SENT_LEASE = timedelta(minutes=5)

# Device reports that end a delivery, by the `Status` the device sent.
STATUS_FROM_REPORT = {
    "Acknowledged": DeliveryStatus.ACKNOWLEDGED,
    "Error": DeliveryStatus.ERROR,
    "CommandFormatError": DeliveryStatus.COMMAND_FORMAT_ERROR,
    "NotNow": DeliveryStatus.NOT_NOW,
}


def eligible_statuses(*, after_idle: bool) -> frozenset[DeliveryStatus]:
    """Which deliveries may be handed out next.

    After `Idle` everything pending is eligible again (NotNow-ed commands included). After a result in the same
    session, commands the device has just deferred with NotNow are skipped so the rest of the queue is not
    blocked (NanoMDM's behaviour; Apple: the device polls again by itself only when NotNow was its last status).
    """
    if after_idle:
        return frozenset({DeliveryStatus.QUEUED, DeliveryStatus.NOT_NOW})
    return frozenset({DeliveryStatus.QUEUED})
