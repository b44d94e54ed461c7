"""`muster doctor`: the rules that turn what an installation looks like into ok / warn / fail verdicts.

The facts (settings, files, the database's schema revision, certificates, free disk) are gathered by the caller;
these functions only judge them, so every threshold is tested without a server. A failure means Muster cannot
work as configured (or is about to stop working: an expired certificate); a warning needs the operator's
attention soon.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

EXPIRY_WARNING = timedelta(days=30)
DISK_WARNING_BYTES = 1024**3
DISK_FAILURE_BYTES = 100 * 1024**2


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def overall(checks: Iterable[Check]) -> Status:
    """The worst verdict of all checks (ok when there are none)."""
    statuses = {check.status for check in checks}
    return next((status for status in (Status.FAIL, Status.WARN) if status in statuses), Status.OK)


def expiry(name: str, not_after: datetime, now: datetime, *, what: str = "expires") -> Check:
    """Fail once `not_after` has passed, warn within 30 days of it."""
    left = not_after - now
    when = not_after.strftime("%Y-%m-%d %H:%M UTC")
    if left <= timedelta(0):
        return Check(name, Status.FAIL, f"expired on {when}")
    if left < EXPIRY_WARNING:
        return Check(name, Status.WARN, f"{what} in {left.days} days ({when}): renew it now")
    return Check(name, Status.OK, f"{what} {when} ({left.days} days)")


def certificate(name: str, cert: x509.Certificate, now: datetime) -> Check:
    """A certificate's validity window, with its subject for the operator to recognise it."""
    subject = _common_name(cert)
    if cert.not_valid_before_utc > now:
        return Check(name, Status.FAIL, f"{subject}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    verdict = expiry(name, cert.not_valid_after_utc, now)
    return Check(name, verdict.status, f"{subject}: {verdict.detail}")


def schema(current: str | None, head: str | None) -> Check:
    if current is None:
        return Check("database schema", Status.FAIL, "no schema: run `muster db upgrade`")
    if current != head:
        return Check(
            "database schema", Status.FAIL, f"at revision {current}, this Muster needs {head}: run `muster db upgrade`"
        )
    return Check("database schema", Status.OK, f"at head ({head})")


def public_url(url: str, *, tls: bool) -> Check:
    """Devices must reach the server over HTTPS at a name they can resolve."""
    parts = urlsplit(url)
    if parts.scheme != "https" and tls:
        return Check("public URL", Status.FAIL, f"{url}: devices only talk to HTTPS servers")
    if parts.scheme != "https":
        return Check("public URL", Status.WARN, f"{url}: not HTTPS, so a TLS-terminating proxy must front it")
    if parts.hostname in (None, "localhost", "127.0.0.1", "::1"):
        return Check("public URL", Status.WARN, f"{url}: devices on the network cannot reach this host name")
    return Check("public URL", Status.OK, url)


def disk_space(path: str, free_bytes: int) -> Check:
    free = f"{free_bytes / 1024**3:.1f} GiB free at {path}"
    if free_bytes < DISK_FAILURE_BYTES:
        return Check("disk space", Status.FAIL, f"only {free}: the SQLite database cannot grow")
    if free_bytes < DISK_WARNING_BYTES:
        return Check("disk space", Status.WARN, f"only {free}")
    return Check("disk space", Status.OK, free)


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()
