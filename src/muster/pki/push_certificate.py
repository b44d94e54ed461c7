"""The MDM push certificate: customer CSR, vendor-signed request, and checks on Apple's certificate.

Implements spec/apple-protocols.md §6.3 (topic = subject UID) and §6.4 (vendor-signed CSR flow).
Every problem an administrator can cause raises `PushCertificateError` with a message they can act on.
"""

from __future__ import annotations

import base64
import plistlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

MDM_TOPIC_PREFIX = "com.apple.mgmt."
PUSH_CERTIFICATES_PORTAL = "https://identity.apple.com/pushcert"
RENEWAL_WARNING_WINDOW = timedelta(days=30)
# After expiry Apple still renews the certificate (same topic) for 30 days (seed 003:1700, APNS-07).
RENEWAL_GRACE_PERIOD = timedelta(days=30)
PUSH_KEY_BITS = 2048


class PushCertificateError(ValueError):
    """A push certificate, key or request an administrator supplied cannot be used; says why."""


@dataclass(frozen=True)
class PushCertificateInfo:
    """What Muster needs to know about an installed push certificate (§6.3)."""

    topic: str
    not_before: datetime
    not_after: datetime
    serial_number: str
    subject: str
    fingerprint_sha256: str


def generate_push_csr(*, common_name: str, email: str | None = None, country: str | None = None) -> tuple[bytes, bytes]:
    """Create the customer's RSA key and CSR (§6.4 step 1); returns (csr_pem, key_pem).

    The key must stay in this Muster instance; only the CSR goes to the vendor for signing.
    """
    if not common_name.strip():
        raise PushCertificateError("The common name of the push certificate request must not be empty.")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise PushCertificateError("The country must be a two-letter ISO 3166 code such as US or FR.")
    # Keychain Access (which Apple's instructions assume) puts e-mail, CN and country in the subject.
    attributes = []
    if email:
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country.upper()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=PUSH_KEY_BITS)
    csr = x509.CertificateSigningRequestBuilder(x509.Name(attributes)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def build_vendor_signed_request(
    csr_pem: bytes,
    *,
    vendor_certificate_pem: bytes,
    vendor_key_pem: bytes,
    chain_pems: Sequence[bytes],
) -> bytes:
    """The "signed CSR" file to upload to Apple's Push Certificates Portal (§6.4 steps 2-3).

    A base64-encoded XML plist holding the DER CSR, the vendor's chain as PEM and a SHA256withRSA
    signature over the DER CSR made with the MDM vendor key. `chain_pems` are Apple's WWDR
    intermediate and root, in that order.
    """
    csr = _load_csr(csr_pem)
    vendor_certificate = _load_certificate(vendor_certificate_pem, "vendor certificate")
    vendor_key = _load_private_key(vendor_key_pem, "vendor key")
    if not isinstance(vendor_key, rsa.RSAPrivateKey):
        raise PushCertificateError("The MDM vendor key must be an RSA key (Apple requires SHA256withRSA).")
    if not _same_public_key(vendor_certificate, vendor_key):
        raise PushCertificateError("The MDM vendor key does not belong to the vendor certificate.")
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    signature = vendor_key.sign(csr_der, padding.PKCS1v15(), hashes.SHA256())
    chain = [vendor_certificate] + [_load_certificate(pem, "chain certificate") for pem in chain_pems]
    request = {
        "PushCertRequestCSR": base64.b64encode(csr_der).decode(),
        # Re-encoding normalises every PEM to the 64-character lines Apple expects.
        "PushCertCertificateChain": "".join(
            certificate.public_bytes(serialization.Encoding.PEM).decode() for certificate in chain
        ),
        "PushCertSignature": base64.b64encode(signature).decode(),
    }
    return base64.b64encode(plistlib.dumps(request, fmt=plistlib.FMT_XML))


def parse_push_certificate(
    certificate_pem: bytes, key_pem: bytes, *, now: datetime | None = None
) -> PushCertificateInfo:
    """Check the certificate Apple issued against our key and describe it (§6.3).

    Refused: unreadable input, a subject without a `com.apple.mgmt.` UID topic, a key that is not the
    certificate's, and a certificate outside its validity period at `now` (default: the current time).
    """
    certificate = _load_certificate(certificate_pem, "push certificate")
    key = _load_private_key(key_pem, "push certificate key")
    topic = _topic_of(certificate)
    if not _same_public_key(certificate, key):
        raise PushCertificateError(
            "The push certificate was not issued for this private key. Upload the certificate Apple "
            "issued for the request generated by this Muster instance."
        )
    now = now or datetime.now(UTC)
    if now > certificate.not_valid_after_utc:
        raise PushCertificateError(
            f"The push certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}. An expired "
            f"certificate cannot be used; renew it in Apple's Push Certificates Portal "
            f"({PUSH_CERTIFICATES_PORTAL})."
        )
    if now < certificate.not_valid_before_utc:
        raise PushCertificateError(
            f"The push certificate is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} "
            "UTC; check this server's clock."
        )
    return PushCertificateInfo(
        topic=topic,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        serial_number=format(certificate.serial_number, "x"),
        subject=certificate.subject.rfc4514_string(),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def check_renewal(current_topic: str, renewal: PushCertificateInfo) -> None:
    """Refuse a replacement certificate whose topic differs from the enrolled devices' (§6.3, §6.4)."""
    if renewal.topic == current_topic:
        return
    raise PushCertificateError(
        f"This certificate's topic ({renewal.topic}) differs from the current topic ({current_topic}). "
        "Devices enrolled with the current topic would no longer receive pushes, forcing every "
        "enrolled device to re-enroll. Renew the existing certificate instead: in Apple's Push "
        f"Certificates Portal ({PUSH_CERTIFICATES_PORTAL}) sign in with the same Apple Account that "
        'created it and choose "Renew" on that certificate, rather than creating a new one.'
    )


def expiry_warning(topic: str, not_after: datetime, now: datetime) -> str | None:
    """An administrator warning when the certificate has expired or expires within 30 days, else None.

    `now` must be timezone-aware.
    """
    remaining = not_after - now
    if remaining <= -RENEWAL_GRACE_PERIOD:
        return (
            f"The push certificate {topic} expired on {not_after:%Y-%m-%d}, more than 30 days ago: it can no longer "
            "be renewed. Create a new one; every Apple device must then re-enroll."
        )
    if remaining <= timedelta(0):
        return (
            f"The push certificate {topic} expired on {not_after:%Y-%m-%d}: devices can no longer be woken. "
            f"Renew it within 30 days of expiry in Apple's Push Certificates Portal ({PUSH_CERTIFICATES_PORTAL})."
        )
    if remaining > RENEWAL_WARNING_WINDOW:
        return None
    return (
        f"The push certificate {topic} expires on {not_after:%Y-%m-%d} "
        f"({remaining.days} days left). Renew it with the same Apple Account in Apple's Push "
        f"Certificates Portal ({PUSH_CERTIFICATES_PORTAL}); after expiry devices can no longer be woken."
    )


def _topic_of(certificate: x509.Certificate) -> str:
    uids = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids:
        raise PushCertificateError("The certificate has no UID in its subject, so it is not an MDM push certificate.")
    topic = uids[0].value
    if not isinstance(topic, str) or not topic.startswith(MDM_TOPIC_PREFIX):
        raise PushCertificateError(
            f"The certificate's topic ({topic!r}) does not start with {MDM_TOPIC_PREFIX}: it is an "
            "app push certificate, not an MDM push certificate."
        )
    return topic


def _same_public_key(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as error:
        raise PushCertificateError("The certificate signing request is not a readable PEM CSR.") from error
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        valid = False
    if not valid:
        raise PushCertificateError("The certificate signing request's signature is invalid.")
    return csr


def _load_certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise PushCertificateError(f"The {what} is not a readable PEM certificate.") from error


def _load_private_key(pem: bytes, what: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise PushCertificateError(f"The {what} is not a readable, unencrypted PEM private key.") from error
