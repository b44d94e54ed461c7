"""The server's own certificates: the device CA (issues SCEP identities, signs the TLS certificate of the
embedded default) and the identity that signs enrollment profiles.

Both are created on first start and shared by every server process through the database; private keys are
stored encrypted with the operator's master key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from muster.domain.clock import Clock
from muster.pki.ca import CertificateAuthority
from muster.pki.certs import (
    PrivateKey,
    certificate_pem,
    load_pem_certificate,
    load_pem_private_key,
    private_key_pem,
)
from muster.pki.secretbox import SecretBox

DEVICE_CA = "deviceCa"
PROFILE_SIGNING = "profileSigning"


class KeyPairStore(Protocol):
    async def get(self, *, org_id: str, purpose: str) -> tuple[bytes, bytes] | None: ...

    async def add_if_absent(
        self, *, org_id: str, purpose: str, certificate_pem: bytes, key_encrypted: bytes, now: datetime
    ) -> tuple[bytes, bytes]: ...


@dataclass(frozen=True)
class SigningIdentity:
    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class ServerIdentity:
    authority: CertificateAuthority
    profile_signer: SigningIdentity


async def load_or_create(
    *,
    store: KeyPairStore,
    secrets: SecretBox,
    clock: Clock,
    org_id: str,
    organization_name: str,
    imported_signer: tuple[bytes, bytes] | None = None,
) -> ServerIdentity:
    """Load the CA and the profile signer, creating each on first start.

    `imported_signer` (certificate PEM, key PEM) is an operator-supplied signing identity used instead of ours.
    """
    ca_pem, ca_key = await _pair(store, secrets, clock, org_id, DEVICE_CA, lambda: _new_ca(organization_name))
    authority = CertificateAuthority.from_pem(ca_pem, ca_key)
    if imported_signer is not None:
        return ServerIdentity(authority=authority, profile_signer=read_signing_identity(*imported_signer))
    signer_pem, signer_key = await _pair(
        store, secrets, clock, org_id, PROFILE_SIGNING, lambda: _new_signer(authority, organization_name)
    )
    signer = SigningIdentity(
        load_pem_certificate(signer_pem), load_pem_private_key(signer_key), (authority.certificate,)
    )
    return ServerIdentity(authority=authority, profile_signer=signer)


def read_signing_identity(certificate_pem: bytes, key_pem: bytes) -> SigningIdentity:
    """An operator-supplied signer: its certificate first, then any intermediates to send along (the chain).

    ValueError, saying which part is wrong, when either does not parse or the key does not match.
    """
    try:
        certificates = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError:
        raise ValueError("the certificate file holds no valid PEM certificate") from None
    try:
        key = load_pem_private_key(key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:  # TypeError: encrypted, it needs a password
        raise ValueError(f"the key file holds no usable unencrypted PEM private key ({error})") from None
    if certificates[0].public_key() != key.public_key():
        raise ValueError("the private key does not match the certificate (the first one in the certificate file)")
    return SigningIdentity(certificates[0], key, tuple(certificates[1:]))


async def _pair(
    store: KeyPairStore,
    secrets: SecretBox,
    clock: Clock,
    org_id: str,
    purpose: str,
    make: Callable[[], tuple[bytes, bytes]],
) -> tuple[bytes, bytes]:
    stored = await store.get(org_id=org_id, purpose=purpose)
    if stored is None:
        cert_pem, key_pem = make()
        stored = await store.add_if_absent(
            org_id=org_id,
            purpose=purpose,
            certificate_pem=cert_pem,
            key_encrypted=secrets.encrypt(key_pem, purpose=f"keyPair:{purpose}"),
            now=clock.now(),
        )
    cert_pem, key_encrypted = stored
    return cert_pem, secrets.decrypt(key_encrypted, purpose=f"keyPair:{purpose}")


def _new_ca(organization_name: str) -> tuple[bytes, bytes]:
    ca = CertificateAuthority.generate(f"{organization_name} Device CA", organization=organization_name)
    return certificate_pem(ca.certificate), private_key_pem(ca.key)


def _new_signer(authority: CertificateAuthority, organization_name: str) -> tuple[bytes, bytes]:
    certificate, key = authority.issue_signing_certificate(f"{organization_name} Profile Signing")
    return certificate_pem(certificate), private_key_pem(key)
