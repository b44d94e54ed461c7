"""Who is talking: bind device identity certificates to enrollments (apple-protocols.md §3.3, §3.4).

Every device request carries an identity certificate, either as a detached CMS signature over the body
(`Mdm-Signature`) or as the client certificate a TLS-terminating proxy forwards. The certificate must be one
our CA issued over SCEP; at `Authenticate` it is bound to the enrollment, and every later request must come
with the certificate bound to the enrollment it names. Failures are answered 400/403, never 401 (a 401
unenrolls the device), audited, and change nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NoReturn, Protocol

from cryptography import x509

from muster.pki.certs import fingerprint_sha256
from muster.services.audit import AuditSink
from muster.services.ports import CertificateBinding, MdmStore


class DeviceRequestRejected(Exception):
    """The request is refused; `status` is 400 or 403 and `reason` is safe to send back."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class IssuingAuthority(Protocol):
    def issued(self, certificate: x509.Certificate) -> bool: ...


@dataclass(frozen=True)
class DeviceCertificate:
    fingerprint: str
    binding: CertificateBinding


class DeviceAuthenticator:
    """Checks identity certificates; remembers the ones already bound so the hot path skips the database."""

    def __init__(self, store: MdmStore, authority: IssuingAuthority, audit: AuditSink, cache_size: int = 100_000):
        self._store = store
        self._authority = authority
        self._audit = audit
        self._bound: OrderedDict[str, CertificateBinding] = OrderedDict()
        self._cache_size = cache_size

    async def identify(self, certificate: x509.Certificate | None, *, claimed: str) -> DeviceCertificate:
        """Check that the certificate is ours and known; `claimed` is the enrollment id the message names."""
        if certificate is None:
            await self._reject("noIdentity", claimed, "no device identity certificate presented")
        fingerprint = fingerprint_sha256(certificate)
        cached = self._bound.get(fingerprint)
        if cached is not None:
            self._bound.move_to_end(fingerprint)
            return DeviceCertificate(fingerprint, cached)
        if not self._authority.issued(certificate):
            await self._reject("untrustedCertificate", claimed, "certificate not issued by this server or expired")
        binding = await self._store.certificate_binding(fingerprint)
        if binding is None:
            await self._reject("unknownCertificate", claimed, "certificate unknown to this server")
        return DeviceCertificate(fingerprint, binding)

    async def check_new_enrollment(self, device: DeviceCertificate, enrollment_id: str) -> None:
        """At Authenticate: the certificate may be unbound, or already bound to this same enrollment."""
        bound = device.binding.enrollment_id
        if bound is not None and bound != enrollment_id:
            await self._reject("certificateReuse", enrollment_id, "certificate is bound to another enrollment")
        self._forget(device.fingerprint)

    async def check_bound(self, device: DeviceCertificate, device_channel_id: str) -> None:
        """Any later request: the certificate must be bound to the device channel the message names."""
        if device.binding.enrollment_id != device_channel_id:
            self._forget(device.fingerprint)
            await self._reject("certificateMismatch", device_channel_id, "certificate not bound to this enrollment")
        self._remember(device.fingerprint, device.binding)

    async def _reject(self, reason: str, claimed: str, message: str, status: int = 400) -> NoReturn:
        await self._audit.device_event(activity="deviceAuthenticationFailed", target=claimed, detail={"reason": reason})
        raise DeviceRequestRejected(message, status=status)

    def _remember(self, fingerprint: str, binding: CertificateBinding) -> None:
        self._bound[fingerprint] = binding
        if len(self._bound) > self._cache_size:
            self._bound.popitem(last=False)

    def _forget(self, fingerprint: str) -> None:
        self._bound.pop(fingerprint, None)
