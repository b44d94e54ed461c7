"""Reading the operator's settings into what the composition root wires: keys, identities, outbound clients."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509

from muster.clients.apns import ApnsClient
from muster.clients.dep import DepClient
from muster.config import ConfigurationError, Settings
from muster.pki.secretbox import SecretBox
from muster.protocols.apple.dep_token import DepCredentials
from muster.services.ade_ports import DepApi, DepApiFactory
from muster.services.push import PushSender
from muster.services.push_certificates import PushCertificates
from muster.services.server_identity import read_signing_identity

log = logging.getLogger(__name__)


class ApnsSenders:
    """One APNs client per active push certificate, replaced when the certificate changes."""

    def __init__(self, push_certificates: PushCertificates, settings: Settings) -> None:
        self._certificates = push_certificates
        self._settings = settings
        self._client: ApnsClient | None = None
        self._certificate_id: str | None = None

    async def __call__(self) -> PushSender | None:
        active = await self._certificates.active()
        if active is None:
            return None
        if self._client is None or self._certificate_id != active.certificate_id:
            await self.aclose()
            verify: str | bool = str(self._settings.apns_ca_file) if self._settings.apns_ca_file else True
            self._client = ApnsClient(
                base_url=self._settings.apns_url,
                certificate_pem=active.certificate_pem,
                key_pem=active.key_pem,
                verify=verify,
            )
            self._certificate_id = active.certificate_id
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def dep_api_factory(settings: Settings) -> DepApiFactory:
    """One DEP client per use of a token's credentials, pointed at Apple (or the simulator in tests)."""

    def open_client(credentials: DepCredentials) -> DepApi:
        return DepClient(base_url=settings.dep_url, credentials=credentials)

    return open_client


def load_device_authorities(settings: Settings) -> list[x509.Certificate]:
    """The CAs whose device certificates may sign ADE profile requests; none configured means no check."""
    path = settings.apple_device_ca_file
    if path is None:
        return []
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"MUSTER_APPLE_DEVICE_CA_FILE: {path}: {error}") from None


def load_master_key(settings: Settings) -> bytes:
    """The operator's key for secrets at rest; the embedded default generates one (with a warning)."""
    if settings.master_key:
        try:
            return SecretBox.decode_key(settings.master_key)
        except ValueError as error:
            raise ConfigurationError(f"MUSTER_MASTER_KEY: {error}") from None
    path = settings.master_key_file or settings.data_dir / "master.key"
    if not path.exists():
        if settings.master_key_file:
            raise ConfigurationError(f"MUSTER_MASTER_KEY_FILE: {path} does not exist")
        write_private(path, SecretBox.generate_key().hex().encode())
        log.warning("generated a master key at %s: back it up, secrets cannot be decrypted without it", path)
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigurationError(f"{path}: the master key file must hold 64 hexadecimal characters") from None


def load_profile_signer(settings: Settings) -> tuple[bytes, bytes] | None:
    """The operator's profile-signing identity (certificate PEM, key PEM), checked; None to use Muster's own."""
    cert_file, key_file = settings.profile_signing_cert_file, settings.profile_signing_key_file
    if cert_file is None or key_file is None:
        return None
    try:
        pems = cert_file.read_bytes(), key_file.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"profile signing identity: cannot read {error.filename}: {error.strerror}") from None
    try:
        read_signing_identity(*pems)
    except ValueError as error:
        raise ConfigurationError(f"profile signing identity ({cert_file}, {key_file}): {error}") from None
    return pems


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)
