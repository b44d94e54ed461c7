"""The identity an Apple device signs its MachineInfo with, as Apple's factory gives it one.

Real devices carry a certificate from "Apple iPhone Device CA"; the simulator plays that CA with one local key
per process, so a virtual device's MachineInfo is a real CMS signature a server can verify.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import PrivateKey, generate_rsa_key


@lru_cache(maxsize=1)
def simulated_device_ca() -> CertificateAuthority:
    return CertificateAuthority.generate("Apple iPhone Device CA (simulated)", organization="Apple Inc. (simulated)")


def factory_identity(udid: str) -> tuple[x509.Certificate, PrivateKey]:
    """A device certificate and key, as burnt in at the factory."""
    key = generate_rsa_key(2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, udid)]))
        .sign(key, hashes.SHA256())
    )
    return simulated_device_ca().issue_device_certificate(csr), key
