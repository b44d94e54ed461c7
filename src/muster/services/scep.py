"""SCEP responder use case (apple-protocols.md §5.3), independent of the HTTP framework.

The web layer maps `GetCACaps`, `GetCACert` and `PKIOperation` onto these methods and answers 400 when
`pki_operation` raises `ParseError`.
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from muster.pki.ca import CertificateAuthority, check_device_key
from muster.protocols import scep
from muster.services import metrics

CA_CERT_CONTENT_TYPE = "application/x-x509-ca-cert"
PKI_MESSAGE_CONTENT_TYPE = "application/x-pki-message"


class ChallengeVerifier(Protocol):
    async def consume(self, challenge: str | None, csr: x509.CertificateSigningRequest) -> str | None:
        """The enrollment reference of a valid one-time challenge (now marked used), else None.

        A refused challenge is recorded by the verifier itself, which knows why (unknown, expired, reused) and
        for which enrollment request."""
        ...


class IssuedCertificateSink(Protocol):
    async def record(self, enrollment_ref: str | None, certificate: x509.Certificate) -> None:
        """Remember an issued certificate so the following Authenticate can be tied to it (§5.3 step 4).
        `enrollment_ref` is None for a renewal, which carries no challenge."""
        ...

    async def record_failure(self, reason: str, transaction_id: str) -> None:
        """Keep a trace of a refused request."""
        ...


class ScepService:
    """Answers SCEP operations with the local CA: one-time challenges for PKCSReq, the current
    certificate for RenewalReq."""

    def __init__(self, ca: CertificateAuthority, challenges: ChallengeVerifier, sink: IssuedCertificateSink) -> None:
        if not isinstance(ca.key, rsa.RSAPrivateKey):
            raise ValueError("SCEP needs an RSA CA key: clients encrypt their requests to it")
        self._ca = ca
        self._ca_key: rsa.RSAPrivateKey = ca.key
        self._challenges = challenges
        self._sink = sink

    def ca_caps(self) -> bytes:
        return scep.encode_ca_caps()

    def ca_cert(self) -> tuple[bytes, str]:
        return self._ca.certificate_der, CA_CERT_CONTENT_TYPE

    async def pki_operation(self, body: bytes) -> bytes:
        """The CertRep for a PKIOperation body; raises ParseError when the body is unreadable."""
        request = scep.parse_pki_message(body, ca_certificate=self._ca.certificate, ca_key=self._ca_key)
        try:
            check_device_key(request.csr.public_key())
        except ValueError as exc:
            return await self._refuse(request, scep.FailInfo.BAD_ALG, str(exc))
        if request.message_type is scep.MessageType.RENEWAL_REQ:
            if not self._ca.issued(request.signer_certificate):
                reason = "renewal not signed by a valid certificate from this CA"
                return await self._refuse(request, scep.FailInfo.BAD_REQUEST, reason)
            enrollment_ref = None
        else:
            enrollment_ref = await self._challenges.consume(request.challenge_password, request.csr)
            if enrollment_ref is None:
                return self._failure(request, scep.FailInfo.BAD_REQUEST)
        issued = self._ca.issue_device_certificate(request.csr)
        await self._sink.record(enrollment_ref, issued)
        metrics.SCEP_OPERATIONS.labels("issued").inc()
        return scep.build_cert_rep_success(request, issued, ca_certificate=self._ca.certificate, ca_key=self._ca_key)

    async def _refuse(self, request: scep.PkiRequest, fail_info: scep.FailInfo, reason: str) -> bytes:
        await self._sink.record_failure(reason, request.transaction_id)
        return self._failure(request, fail_info)

    def _failure(self, request: scep.PkiRequest, fail_info: scep.FailInfo) -> bytes:
        metrics.SCEP_OPERATIONS.labels("refused").inc()
        return scep.build_cert_rep_failure(request, fail_info, ca_certificate=self._ca.certificate, ca_key=self._ca_key)
