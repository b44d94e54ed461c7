"""What the use cases count for operators, exposed by the web layer at `/metrics` (Prometheus text format).

The counters live in this process's memory (prometheus_client's default registry): with several server
processes, each one's `/metrics` reports its own share. Every label takes values from a closed set, never from
what a device sent, so a misbehaving device cannot blow up the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter

from muster.protocols.apple.checkin import CheckinMessage, UnknownCheckin
from muster.protocols.errors import ParseError
from muster.services.device_auth import DeviceRequestRejected

CHECKINS = Counter(
    "muster_mdm_checkins_total", "Apple MDM check-in messages, by message type and result", ["message_type", "result"]
)
COMMAND_REPORTS = Counter(
    "muster_mdm_command_reports_total",
    "Apple MDM command-loop reports (Idle or a command result), by status",
    ["status"],
)
ENROLLMENTS = Counter("muster_enrollments_completed_total", "Device enrollments completed, by platform", ["platform"])
PUSHES = Counter("muster_apns_pushes_total", "APNs push attempts, by outcome", ["outcome"])
SCEP_OPERATIONS = Counter(
    "muster_scep_operations_total", "SCEP PKIOperation requests, by result (issued or refused)", ["result"]
)


def checkin_type(message: CheckinMessage | None) -> str:
    """The message-type label: the decoded class, `Unknown` for types this server does not know, `invalid` if
    the body could not be decoded."""
    if message is None:
        return "invalid"
    return "Unknown" if isinstance(message, UnknownCheckin) else type(message).__name__


def failure_result(error: BaseException) -> str:
    """The result label of a device request that raised `error`."""
    if isinstance(error, ParseError):
        return "malformed"
    if isinstance(error, DeviceRequestRejected):
        return "rejected"
    return "error"
