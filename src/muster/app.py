"""Composition root: the one place that names concrete classes and wires them together."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.clients.apns import ApnsClient
from muster.clients.dep import DepClient
from muster.config import ConfigurationError, Settings
from muster.domain.ade_sync import RELEASED_PURGE_AFTER
from muster.domain.clock import Clock, SystemClock
from muster.domain.rbac import BuiltInRole
from muster.jobs.runner import Job, JobRunner
from muster.pki.certs import certificate_pem, private_key_pem
from muster.pki.secretbox import SecretBox
from muster.protocols.apple.dep_token import DepCredentials
from muster.services.ade_enrollment import AdeEnrollment
from muster.services.ade_ports import DepApi, DepApiFactory
from muster.services.ade_profiles import AdeProfiles
from muster.services.ade_sync import AdeSync
from muster.services.ade_tokens import AdeTokens, warn_expiring_tokens
from muster.services.admins import Admins
from muster.services.consents import Consents
from muster.services.device_auth import DeviceAuthenticator
from muster.services.devices import DeviceActions
from muster.services.enrollment_profiles import DeviceEndpoints, EnrollmentProfiles
from muster.services.enrollment_requests import EnrollmentChallenges
from muster.services.inventory import InventoryRecorder
from muster.services.mdm import AppleMdm
from muster.services.push import PushDispatcher, PushSender
from muster.services.push_certificates import PushCertificates
from muster.services.queueing import CommandQueue
from muster.services.scep import ScepService
from muster.services.server_identity import ServerIdentity, load_or_create, read_signing_identity
from muster.store.ade_devices import SqlAdeDeviceStore
from muster.store.ade_enrollment import SqlAdeEnrollmentStore
from muster.store.ade_profiles import SqlAdeProfileStore
from muster.store.ade_sync import SqlAdeSyncStore
from muster.store.ade_tokens import SqlTokenStore
from muster.store.admins import SqlApiTokenStore, SqlAuditSink
from muster.store.consents import SqlConsentStore
from muster.store.devices import SqlDeviceStore
from muster.store.engine import create_engine
from muster.store.enrollment_requests import SqlEnrollmentRequestStore
from muster.store.key_pairs import SqlKeyPairStore
from muster.store.mdm import SqlMdmStore
from muster.store.push_certificates import SqlPushCertificateStore
from muster.store.tables import DEFAULT_ORG_ID, organizations

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    clock: Clock
    identity: ServerIdentity
    endpoints: DeviceEndpoints
    admins: Admins
    audit: SqlAuditSink
    mdm: AppleMdm
    scep: ScepService
    profiles: EnrollmentProfiles
    push_certificates: PushCertificates
    consents: Consents
    pusher: PushDispatcher
    queue: CommandQueue
    devices: SqlDeviceStore
    device_actions: DeviceActions
    apns: ApnsSenders
    ade_sync: AdeSync
    ade_profiles: AdeProfiles
    ade_enrollment: AdeEnrollment
    ade_devices: SqlAdeDeviceStore
    ade_tokens: AdeTokens

    async def aclose(self) -> None:
        await self.ade_sync.wait_idle()
        await self.pusher.close()
        await self.apns.aclose()
        await self.engine.dispose()


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
        _write_private(path, SecretBox.generate_key().hex().encode())
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


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)


async def ensure_default_organization(engine: AsyncEngine, name: str, now: datetime) -> None:
    async with engine.begin() as conn:
        found = (await conn.execute(select(organizations.c.id).where(organizations.c.id == DEFAULT_ORG_ID))).first()
        if found is None:
            await conn.execute(insert(organizations).values(id=DEFAULT_ORG_ID, name=name, created_at=now))


async def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    """Wire the application over an upgraded database."""
    clock = clock or SystemClock()
    secrets = SecretBox(load_master_key(settings))
    imported_signer = load_profile_signer(settings)
    engine = create_engine(settings.effective_database_url)
    await ensure_default_organization(engine, settings.organization_name, clock.now())
    audit = SqlAuditSink(engine, clock=clock, org_id=DEFAULT_ORG_ID)
    identity = await load_or_create(
        store=SqlKeyPairStore(engine),
        secrets=secrets,
        clock=clock,
        org_id=DEFAULT_ORG_ID,
        organization_name=settings.organization_name,
        imported_signer=imported_signer,
    )
    endpoints = DeviceEndpoints(settings.effective_public_url)
    consents = Consents(store=SqlConsentStore(engine), audit=audit, clock=clock)
    push_certificates = PushCertificates(
        store=SqlPushCertificateStore(engine),
        secrets=secrets,
        audit=audit,
        clock=clock,
        org_id=DEFAULT_ORG_ID,
        organization_name=settings.organization_name,
        consents=consents,
    )
    apns = ApnsSenders(push_certificates, settings)
    mdm_store = SqlMdmStore(engine)
    pusher = PushDispatcher(store=mdm_store, sender=apns)
    queue = CommandQueue(store=mdm_store, pusher=pusher, clock=clock)
    challenges = EnrollmentChallenges(
        store=SqlEnrollmentRequestStore(engine),
        clock=clock,
        ttl=timedelta(seconds=settings.scep_challenge_ttl_seconds),
        default_org_id=DEFAULT_ORG_ID,
    )
    devices = SqlDeviceStore(engine)
    profiles = EnrollmentProfiles(
        challenges=challenges,
        identity=identity,
        endpoints=endpoints,
        push_topic=push_certificates.topic,
        organization_name=settings.organization_name,
        audit=audit,
    )
    token_store = SqlTokenStore(engine)
    ade_profiles = AdeProfiles(
        store=SqlAdeProfileStore(engine),
        tokens=token_store,
        secrets=secrets,
        api=dep_api_factory(settings),
        enrollment_url=endpoints.ade_enrollment_url,
        anchor_certificates=[identity.authority.certificate_der],
        audit=audit,
        clock=clock,
    )
    ade_sync = AdeSync(
        store=SqlAdeSyncStore(engine),
        secrets=secrets,
        api=dep_api_factory(settings),
        clock=clock,
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        after_sync=ade_profiles.assign_defaults,
        lease=timedelta(seconds=settings.ade_sync_lease_seconds),
    )
    return Container(
        settings=settings,
        engine=engine,
        clock=clock,
        identity=identity,
        endpoints=endpoints,
        admins=Admins(store=SqlApiTokenStore(engine), clock=clock),
        audit=audit,
        mdm=AppleMdm(
            store=mdm_store,
            authenticator=DeviceAuthenticator(mdm_store, identity.authority, audit),
            queue=queue,
            inventory=InventoryRecorder(mdm_store),
            secrets=secrets,
            push_topic=push_certificates.topic,
            clock=clock,
        ),
        scep=ScepService(identity.authority, challenges, challenges),
        profiles=profiles,
        push_certificates=push_certificates,
        consents=consents,
        pusher=pusher,
        queue=queue,
        devices=devices,
        device_actions=DeviceActions(
            store=devices,
            queue=queue,
            secrets=secrets,
            audit=audit,
            clock=clock,
            profile_identifier=endpoints.profile_identifier,
        ),
        apns=apns,
        ade_sync=ade_sync,
        ade_profiles=ade_profiles,
        ade_devices=SqlAdeDeviceStore(engine),
        ade_enrollment=AdeEnrollment(
            store=SqlAdeEnrollmentStore(engine),
            profiles=profiles,
            clock=clock,
            device_authorities=load_device_authorities(settings),
        ),
        ade_tokens=AdeTokens(
            store=token_store,
            secrets=secrets,
            api=dep_api_factory(settings),
            sync=ade_sync,
            consents=consents,
            audit=audit,
            clock=clock,
        ),
    )


async def prepare_server(settings: Settings) -> Path | None:
    """First-start work before serving: the TLS certificate of the embedded default and the first admin token.

    Returns the path of a newly written admin token file, or None when an admin token already existed.
    """
    container = await build_container(settings)
    try:
        if settings.tls and settings.tls_cert_file is None:
            _ensure_tls_files(container, settings)
        if await container.admins.any_token(DEFAULT_ORG_ID):
            return None
        token = await container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="initial administrator", role=BuiltInRole.INTUNE_ADMINISTRATOR
        )
        path = settings.data_dir / "admin-token"
        _write_private(path, token.encode() + b"\n")
        return path
    finally:
        await container.aclose()


def tls_paths(settings: Settings) -> tuple[Path, Path]:
    if settings.tls_cert_file and settings.tls_key_file:
        return settings.tls_cert_file, settings.tls_key_file
    return settings.data_dir / "tls" / "server.crt", settings.data_dir / "tls" / "server.key"


def _ensure_tls_files(container: Container, settings: Settings) -> None:
    """A server certificate from our own CA; enrollment profiles carry the CA, so devices trust it."""
    cert_path, key_path = tls_paths(settings)
    if cert_path.exists() and key_path.exists():
        return
    host = urlsplit(settings.effective_public_url).hostname or "localhost"
    names = list(dict.fromkeys([host, "localhost", "127.0.0.1"]))
    certificate, key = container.identity.authority.issue_tls_server_certificate(names)
    _write_private(key_path, private_key_pem(key))
    _write_private(cert_path, certificate_pem(certificate) + certificate_pem(container.identity.authority.certificate))


def background_jobs(container: Container) -> JobRunner:
    """The periodic work every server process does (each job is safe to run in several processes at once)."""
    clock = container.clock
    sync_store = SqlAdeSyncStore(container.engine)
    return JobRunner(
        [
            Job("adeSync", container.ade_sync.run_due),
            Job("retryAdeProfileAssignments", container.ade_profiles.retry_failed),
            Job(
                "depTokenExpiryWarnings",
                lambda: warn_expiring_tokens(SqlTokenStore(container.engine), container.audit, clock),
            ),
            Job("purgeReleasedAdeDevices", lambda: sync_store.purge_released(clock.now() - RELEASED_PURGE_AFTER)),
        ],
        interval=container.settings.jobs_interval_seconds,
    )
