"""ScepService: challenges gate PKCSReq, our own certificates gate RenewalReq, garbage is a ParseError."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AttributeOID, NameOID

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import certificate_pem, generate_rsa_key, private_key_pem, self_signed_certificate
from muster.protocols import scep
from muster.protocols.errors import ParseError
from muster.services.scep import CA_CERT_CONTENT_TYPE, ScepService

CA = CertificateAuthority.generate("Service Test CA")


class OneTimeChallenges:
    """In-memory ChallengeVerifier: each challenge works once."""

    def __init__(self, **challenges: str) -> None:
        self._unused = dict(challenges)

    async def consume(self, challenge: str | None, csr: x509.CertificateSigningRequest) -> str | None:
        return self._unused.pop(challenge, None) if challenge is not None else None


class RecordingSink:
    def __init__(self) -> None:
        self.issued: list[tuple[str | None, x509.Certificate]] = []
        self.failures: list[tuple[str, str]] = []

    async def record(self, enrollment_ref: str | None, certificate: x509.Certificate) -> None:
        self.issued.append((enrollment_ref, certificate))

    async def record_failure(self, reason: str, transaction_id: str) -> None:
        self.failures.append((reason, transaction_id))


class Device:
    """The client half of SCEP, as a virtual device drives it."""

    def __init__(self, common_name: str = "device-1", key: rsa.RSAPrivateKey | None = None) -> None:
        self.key = key or generate_rsa_key()
        self.common_name = common_name
        self.signer = self_signed_certificate(self.key, common_name)

    def csr(self, challenge: str | None) -> x509.CertificateSigningRequest:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)])
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        if challenge is not None:
            builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        return builder.sign(self.key, hashes.SHA256())

    def request(
        self,
        challenge: str | None,
        message_type: scep.MessageType = scep.MessageType.PKCS_REQ,
        csr: x509.CertificateSigningRequest | None = None,
    ) -> bytes:
        csr = csr or self.csr(challenge)
        der, _ = scep.build_pkcs_req(
            csr,
            signer_certificate=self.signer,
            signer_key=self.key,
            recipient_certificate=CA.certificate,
            transaction_id=scep.transaction_id_for(csr.public_key()),
            message_type=message_type,
        )
        return der

    def read(self, reply: bytes) -> scep.CertRep:
        return scep.parse_cert_rep(
            reply, requester_certificate=self.signer, requester_key=self.key, ca_certificate=CA.certificate
        )


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def service(sink: RecordingSink) -> ScepService:
    return ScepService(CA, OneTimeChallenges(good="enrollment-42"), sink)


def test_ca_caps_and_ca_cert(service: ScepService) -> None:
    assert b"POSTPKIOperation" in service.ca_caps().split(b"\n")
    assert service.ca_cert() == (CA.certificate_der, CA_CERT_CONTENT_TYPE)


async def test_valid_challenge_issues_and_records_a_certificate(service: ScepService, sink: RecordingSink) -> None:
    device = Device("iPhone-ABC")
    rep = device.read(await service.pki_operation(device.request("good")))

    assert rep.status is scep.PkiStatus.SUCCESS and rep.certificate is not None
    assert rep.certificate.subject.rfc4514_string() == "CN=iPhone-ABC"
    assert rep.certificate.public_key() == device.key.public_key()
    assert CA.issued(rep.certificate)
    assert sink.issued == [("enrollment-42", rep.certificate)]
    assert sink.failures == []


@pytest.mark.parametrize("challenge", ["wrong", None])
async def test_invalid_challenge_gets_a_signed_failure(
    service: ScepService, sink: RecordingSink, challenge: str | None
) -> None:
    device = Device()
    rep = device.read(await service.pki_operation(device.request(challenge)))

    assert (rep.status, rep.fail_info, rep.certificate) == (
        scep.PkiStatus.FAILURE,
        scep.FailInfo.BAD_REQUEST,
        None,
    )
    assert sink.issued == [] and sink.failures == []  # the verifier records refused challenges itself


async def test_challenge_is_single_use(service: ScepService, sink: RecordingSink) -> None:
    first, second = Device("first"), Device("second")
    assert first.read(await service.pki_operation(first.request("good"))).status is scep.PkiStatus.SUCCESS
    assert second.read(await service.pki_operation(second.request("good"))).status is scep.PkiStatus.FAILURE
    assert len(sink.issued) == 1 and sink.failures == []


async def test_weak_key_is_refused_without_burning_the_challenge(service: ScepService, sink: RecordingSink) -> None:
    weak = Device("weak", rsa.generate_private_key(65537, 1024))
    rep = weak.read(await service.pki_operation(weak.request("good")))
    assert (rep.status, rep.fail_info) == (scep.PkiStatus.FAILURE, scep.FailInfo.BAD_ALG)

    strong = Device("strong")
    assert strong.read(await service.pki_operation(strong.request("good"))).status is scep.PkiStatus.SUCCESS


async def test_renewal_signed_by_our_certificate_needs_no_challenge(service: ScepService, sink: RecordingSink) -> None:
    device = Device("renewing")
    current = device.read(await service.pki_operation(device.request("good"))).certificate
    assert current is not None
    device.signer = current
    new_key = generate_rsa_key()
    renewed_csr = Device("renamed", new_key).csr(None)

    reply = await service.pki_operation(device.request(None, scep.MessageType.RENEWAL_REQ, renewed_csr))
    rep = device.read(reply)

    assert rep.status is scep.PkiStatus.SUCCESS and rep.certificate is not None
    assert rep.certificate.subject.rfc4514_string() == "CN=renamed"
    assert rep.certificate.public_key() == new_key.public_key()
    assert sink.issued[-1] == (None, rep.certificate)


async def test_renewal_signed_by_a_foreign_certificate_is_refused(service: ScepService, sink: RecordingSink) -> None:
    device = Device("stranger")
    rep = device.read(await service.pki_operation(device.request(None, scep.MessageType.RENEWAL_REQ)))
    assert (rep.status, rep.fail_info) == (scep.PkiStatus.FAILURE, scep.FailInfo.BAD_REQUEST)
    assert sink.issued == [] and len(sink.failures) == 1


async def test_unreadable_body_raises_parse_error(service: ScepService, sink: RecordingSink) -> None:
    with pytest.raises(ParseError):
        await service.pki_operation(b"definitely not CMS")
    assert sink.issued == [] and sink.failures == []


def test_an_ec_ca_cannot_serve_scep() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_certificate(key, "EC CA")
    ec_ca = CertificateAuthority.from_pem(certificate_pem(cert), private_key_pem(key))
    with pytest.raises(ValueError, match="RSA"):
        ScepService(ec_ca, OneTimeChallenges(), RecordingSink())
