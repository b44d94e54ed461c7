"""The local certificate authority: issues device identities (SCEP, §5.3), the embedded TLS certificate and the
profile-signing certificate (§4.6)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from muster.pki.certs import CLOCK_SKEW, generate_rsa_key, key_usage, load_pem_private_key
from muster.protocols.cms import PrivateKey

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def check_device_key(public_key: object) -> None:
    """Raise ValueError unless a requested key is RSA >= 2048 bits or EC >= 256 bits."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.key_size < MIN_EC_BITS:
            raise ValueError(f"EC keys must have at least {MIN_EC_BITS} bits")
    else:
        raise ValueError("only RSA and EC keys can be certified")


class CertificateAuthority:
    """A CA certificate and its key; signs every certificate Muster issues."""

    def __init__(self, certificate: x509.Certificate, key: PrivateKey) -> None:
        if certificate.public_key() != key.public_key():
            raise ValueError("the CA key does not match the CA certificate")
        self._certificate = certificate
        self._key = key

    @classmethod
    def generate(
        cls, common_name: str, *, organization: str | None = None, key_size: int = 2048, validity_days: int = 3650
    ) -> CertificateAuthority:
        """A new self-signed root with a fresh RSA key (RSA so SCEP clients can encrypt to it)."""
        key = generate_rsa_key(key_size)
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        name = x509.Name(attributes)
        now = dt.datetime.now(dt.UTC)
        # The CA key also signs SCEP replies and receives encrypted CSRs (RFC 8894 §2.2).
        usage = key_usage(digital_signature=True, key_encipherment=True, key_cert_sign=True, crl_sign=True)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes, password: bytes | None = None) -> CertificateAuthority:
        """Load a CA saved as PEM; ValueError when the parts are malformed or do not match."""
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        return cls(certificate, load_pem_private_key(key_pem, password))

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def key(self) -> PrivateKey:
        return self._key

    @property
    def certificate_der(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.DER)

    def issue_device_certificate(
        self, csr: x509.CertificateSigningRequest, *, validity_days: int = 365, now: dt.datetime | None = None
    ) -> x509.Certificate:
        """A client identity for the CSR's subject and key (§5.3); the caller has checked the CSR.
        `now` (timezone-aware) fixes the start of validity, for tests and back-dated renewals."""
        public_key = csr.public_key()
        check_device_key(public_key)
        builder = self._builder(csr.subject, public_key, validity_days, now)
        return self._sign(
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True, key_encipherment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )

    def issue_tls_server_certificate(
        self, hostnames: Sequence[str], *, validity_days: int = 825
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A server certificate and new key for `hostnames` (DNS names or IP literals). Apple
        platforms refuse TLS server certificates valid for more than 825 days."""
        if not hostnames:
            raise ValueError("a TLS server certificate needs at least one hostname")
        key = generate_rsa_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
        builder = self._builder(subject, key.public_key(), validity_days, None)
        certificate = self._sign(
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True, key_encipherment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_general_names(hostnames)), critical=False)
        )
        return certificate, key

    def issue_signing_certificate(
        self, common_name: str, *, validity_days: int = 825
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A certificate and new RSA key that sign configuration profiles (CMS SignedData, §4.6).

        Signing only: keyUsage digitalSignature, no SAN (it names no host). emailProtection makes standard CMS
        verifiers accept it (OpenSSL's default `smimesign` purpose, macOS's S/MIME policy), codeSigning is what
        profile-signing identities (Apple Configurator, Developer ID) usually carry; serverAuth would let it
        impersonate the server, so it is left out.
        """
        key = generate_rsa_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = self._builder(subject, key.public_key(), validity_days, None)
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING])
        certificate = self._sign(
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True), critical=True)
            .add_extension(eku, critical=False)
        )
        return certificate, key

    def issued(self, certificate: x509.Certificate, *, now: dt.datetime | None = None) -> bool:
        """True when this CA signed `certificate` and it is valid now."""
        try:
            certificate.verify_directly_issued_by(self._certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        moment = now or dt.datetime.now(dt.UTC)
        return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc

    def _builder(
        self, subject: x509.Name, public_key: CertificatePublicKeyTypes, validity_days: int, now: dt.datetime | None
    ) -> x509.CertificateBuilder:
        start = now or dt.datetime.now(dt.UTC)
        # Never outlive the CA: relying parties would reject the chain after the CA expires.
        end = min(start + dt.timedelta(days=validity_days), self._certificate.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - CLOCK_SKEW)
            .not_valid_after(end)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
        )

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        try:
            ca_key_id = self._certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ca_key_id = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id)

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self._key, hashes.SHA256())


def _general_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    return names
