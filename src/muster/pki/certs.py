"""Small certificate and key helpers shared by the CA, the SCEP client side and the simulators."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from muster.protocols.cms import PrivateKey as PrivateKey  # re-exported for callers of this module

# Tolerate clocks a little behind ours when a certificate is used right after issuance.
CLOCK_SKEW = dt.timedelta(minutes=5)


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key with the usual public exponent."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate DER (how enrollments are bound to certificates, §3.4)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def load_pem_certificate(data: bytes) -> x509.Certificate:
    """Parse one PEM certificate; ValueError when it is not one."""
    return x509.load_pem_x509_certificate(data)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of a key, encrypted with the best available scheme when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_pem_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Parse a PEM private key; ValueError unless it is RSA or EC (the kinds Muster signs with)."""
    key = serialization.load_pem_private_key(data, password=password)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("only RSA and EC private keys are supported")
    return key


def self_signed_certificate(key: PrivateKey, common_name: str, days: int = 1) -> x509.Certificate:
    """A short-lived self-signed certificate, what a SCEP client signs its first request with (§5.2)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .sign(key, hashes.SHA256())
    )


def key_usage(**enabled: bool) -> x509.KeyUsage:
    """A KeyUsage extension with only the named usages set, e.g. key_usage(digital_signature=True)."""
    usages = dict.fromkeys(_KEY_USAGES, False) | enabled
    return x509.KeyUsage(**usages)


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
