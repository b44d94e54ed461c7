"""Composition root: the one place that names concrete classes and wires them together."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.app.loaders import (
    ApnsSenders,
    dep_api_factory,
    load_device_authorities,
    load_master_key,
    load_profile_signer,
    write_private,
)
from muster.clients.oidc import HttpOidcProviderApi
from muster.clients.webhooks import HttpWebhookSender
from muster.config import Settings
from muster.domain.clock import Clock, SystemClock
from muster.domain.rbac import BuiltInRole, TokenVerifier
from muster.pki.certs import certificate_pem, private_key_pem
from muster.pki.secretbox import SecretBox
from muster.services.access import Authenticator
from muster.services.access_tokens import AccessTokens
from muster.services.ade_enrollment import WEB_ENROLL_PATH as ADE_WEB_ENROLL_PATH
from muster.services.ade_enrollment import AdeEnrollment
from muster.services.ade_profiles import AdeProfiles
from muster.services.ade_sync import AdeSync
from muster.services.ade_tokens import AdeTokens
from muster.services.admins import Admins
from muster.services.api_clients import ApiClients, FailureLimiter
from muster.services.apple_admission import AppleAdmission
from muster.services.assignment_filters import AssignmentFilters
from muster.services.consents import Consents
from muster.services.corporate_identifiers import CorporateIdentifiers
from muster.services.device_auth import DeviceAuthenticator
from muster.services.device_categories import DeviceCategories
from muster.services.device_codes import DeviceCodes
from muster.services.devices import DeviceActions
from muster.services.directory import Directory
from muster.services.directory_import import UserImport
from muster.services.directory_tokens import ProvisioningTokens
from muster.services.enrollment_attempts import EnrollmentAttempts
from muster.services.enrollment_gate import EnrollmentGate
from muster.services.enrollment_managers import EnrollmentManagers
from muster.services.enrollment_portal import EnrollmentPortal
from muster.services.enrollment_profiles import DeviceEndpoints, EnrollmentProfiles
from muster.services.enrollment_requests import EnrollmentChallenges
from muster.services.enrollment_restrictions import EnrollmentRestrictions
from muster.services.enrollment_type_profiles import EnrollmentTypeProfiles
from muster.services.identity_provider import IdentityProviders
from muster.services.inventory import InventoryRecorder
from muster.services.local_accounts import LocalAccounts
from muster.services.mdm import AppleMdm
from muster.services.oidc_sign_in import OidcSignIn
from muster.services.push import PushDispatcher
from muster.services.push_certificates import PushCertificates
from muster.services.queueing import CommandQueue
from muster.services.roles import Roles
from muster.services.scep import ScepService
from muster.services.server_identity import ServerIdentity, load_or_create
from muster.services.terms import Terms
from muster.services.webhooks import WebhookDispatcher, WebhookEvents, WebhookSubscriptions
from muster.store.ade_devices import SqlAdeDeviceStore
from muster.store.ade_enrollment import SqlAdeEnrollmentStore
from muster.store.ade_profiles import SqlAdeProfileStore
from muster.store.ade_sync import SqlAdeSyncStore
from muster.store.ade_tokens import SqlTokenStore
from muster.store.admins import SqlApiTokenStore
from muster.store.api_clients import SqlApiClientStore
from muster.store.assignment_filters import SqlAssignmentFilterStore
from muster.store.audit import SqlAuditLog, SqlAuditSink
from muster.store.consents import SqlConsentStore
from muster.store.corporate_identifiers import SqlCorporateIdentifierStore
from muster.store.device_categories import SqlDeviceCategoryStore
from muster.store.devices import SqlDeviceStore
from muster.store.directory import SqlDirectoryStore, SqlProvisioningTokenStore
from muster.store.engine import create_engine
from muster.store.enrollment_attempts import SqlAttemptStore
from muster.store.enrollment_decisions import SqlEnrollmentRecords
from muster.store.enrollment_managers import SqlEnrollmentManagerStore
from muster.store.enrollment_requests import SqlEnrollmentRequestStore
from muster.store.enrollment_restrictions import SqlRestrictionStore
from muster.store.enrollment_type_profiles import SqlEnrollmentTypeProfileStore
from muster.store.identity_provider import SqlIdentityProviderStore, SqlSignInDirectory
from muster.store.key_pairs import SqlKeyPairStore
from muster.store.local_accounts import SqlLocalAccountStore
from muster.store.mdm import SqlMdmStore
from muster.store.oauth import SqlDeviceCodeStore, SqlSeenAssertions, SqlSigningKeyStore, SqlTokenSubjects
from muster.store.push_certificates import SqlPushCertificateStore
from muster.store.rbac import SqlRbacStore
from muster.store.tables import DEFAULT_ORG_ID, organizations
from muster.store.terms import SqlTermsStore
from muster.store.webhooks import SqlWebhookStore


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    clock: Clock
    identity: ServerIdentity
    endpoints: DeviceEndpoints
    admins: Admins
    authenticator: Authenticator
    roles: Roles
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
    audit_log: SqlAuditLog
    webhook_subscriptions: WebhookSubscriptions
    webhooks: WebhookDispatcher
    webhook_sender: HttpWebhookSender
    access_tokens: AccessTokens
    api_clients: ApiClients
    local_accounts: LocalAccounts
    device_codes: DeviceCodes
    directory: Directory
    provisioning_tokens: ProvisioningTokens
    user_import: UserImport
    identity_providers: IdentityProviders
    oidc_sign_in: OidcSignIn
    enrollment_portal: EnrollmentPortal
    enrollment_attempts: EnrollmentAttempts  # the Incomplete user enrollments report (IER)
    device_categories: DeviceCategories
    terms: Terms
    assignment_filters: AssignmentFilters
    enrollment_restrictions: EnrollmentRestrictions  # policies_for feeds muster.domain.enrollment_decision
    enrollment_type_profiles: EnrollmentTypeProfiles  # offer_for: Device or User Enrollment, for the portal
    corporate_identifiers: CorporateIdentifiers
    enrollment_managers: EnrollmentManagers
    enrollment_gate: EnrollmentGate
    enrollment_records: SqlEnrollmentRecords
    portal_key: bytes  # signs the enrollment portal's cookies

    async def aclose(self) -> None:
        await self.ade_sync.wait_idle()
        await self.pusher.close()
        await self.apns.aclose()
        await self.webhook_sender.aclose()
        await self.engine.dispose()


async def ensure_default_organization(engine: AsyncEngine, name: str, now: datetime) -> None:
    async with engine.begin() as conn:
        found = (await conn.execute(select(organizations.c.id).where(organizations.c.id == DEFAULT_ORG_ID))).first()
        if found is None:
            await conn.execute(insert(organizations).values(id=DEFAULT_ORG_ID, name=name, created_at=now))


async def build_container(
    settings: Settings, *, clock: Clock | None = None, token_verifiers: Sequence[TokenVerifier] = ()
) -> Container:
    """Wire the application over an upgraded database; `token_verifiers` accept bearer tokens besides `mst_` ones."""
    clock = clock or SystemClock()
    master_key = load_master_key(settings)
    secrets = SecretBox(master_key)
    imported_signer = load_profile_signer(settings)
    engine = create_engine(settings.effective_database_url)
    await ensure_default_organization(engine, settings.organization_name, clock.now())
    audit = SqlAuditSink(engine, clock=clock, org_id=DEFAULT_ORG_ID)
    admins = Admins(store=SqlApiTokenStore(engine), clock=clock)
    rbac_store = SqlRbacStore(engine)
    access_tokens = AccessTokens(
        keys=SqlSigningKeyStore(engine),
        subjects=SqlTokenSubjects(engine),
        secrets=secrets,
        clock=clock,
        org_id=DEFAULT_ORG_ID,
        issuer=settings.effective_public_url,
        lifetime_seconds=settings.access_token_lifetime_seconds,
    )
    await access_tokens.load()
    authenticator = Authenticator(admins=admins, store=rbac_store, verifiers=(access_tokens, *token_verifiers))
    roles = Roles(store=rbac_store, authenticator=authenticator, audit=audit, clock=clock)
    await roles.ensure_built_ins(DEFAULT_ORG_ID)
    restrictions = EnrollmentRestrictions(store=SqlRestrictionStore(engine), audit=audit, clock=clock)
    await restrictions.ensure_defaults(DEFAULT_ORG_ID)  # before any request: reads never write
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
    enrollment_requests = SqlEnrollmentRequestStore(engine)
    challenges = EnrollmentChallenges(
        store=enrollment_requests,
        clock=clock,
        ttl=timedelta(seconds=settings.scep_challenge_ttl_seconds),
        default_org_id=DEFAULT_ORG_ID,
    )
    devices = SqlDeviceStore(engine)
    identity_providers = IdentityProviders(
        store=SqlIdentityProviderStore(engine), secrets=secrets, audit=audit, clock=clock
    )
    sign_in_directory = SqlSignInDirectory(engine)
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
        configuration_web_url=f"{endpoints.public_url}{ADE_WEB_ENROLL_PATH}",
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
    directory_store = SqlDirectoryStore(engine)
    local_account_store = SqlLocalAccountStore(engine)
    local_accounts = LocalAccounts(
        store=local_account_store, secrets=secrets, audit=audit, clock=clock, issuer=settings.organization_name
    )
    category_store = SqlDeviceCategoryStore(engine)
    directory = Directory(store=directory_store, categories=category_store, audit=audit, clock=clock)
    terms = Terms(store=SqlTermsStore(engine), clock=clock)
    assignment_filter_store = SqlAssignmentFilterStore(engine)
    webhook_store = SqlWebhookStore(engine)
    corporate_identifier_store = SqlCorporateIdentifierStore(engine)
    enrollment_manager_store = SqlEnrollmentManagerStore(engine)
    enrollment_records = SqlEnrollmentRecords(engine)
    enrollment_gate = EnrollmentGate(
        directory=directory,
        restrictions=restrictions,
        filters=assignment_filter_store,
        identities=corporate_identifier_store,
        managers=enrollment_manager_store,
        terms=terms,
        records=enrollment_records,
        clock=clock,
    )
    webhook_sender = HttpWebhookSender(verify=str(settings.webhook_ca_file) if settings.webhook_ca_file else True)
    return Container(
        settings=settings,
        engine=engine,
        clock=clock,
        identity=identity,
        endpoints=endpoints,
        admins=admins,
        authenticator=authenticator,
        roles=roles,
        audit=audit,
        mdm=AppleMdm(
            store=mdm_store,
            authenticator=DeviceAuthenticator(mdm_store, identity.authority, audit),
            queue=queue,
            inventory=InventoryRecorder(mdm_store),
            secrets=secrets,
            push_topic=push_certificates.topic,
            clock=clock,
            events=WebhookEvents(store=webhook_store, clock=clock),
            admission=AppleAdmission(gate=enrollment_gate, intents=enrollment_records),
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
            accounts=local_accounts,
            account_store=local_account_store,
            providers=identity_providers,
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
        audit_log=SqlAuditLog(engine),
        webhook_subscriptions=WebhookSubscriptions(
            store=webhook_store,
            secrets=secrets,
            clock=clock,
            allow_loopback_http=settings.webhook_allow_loopback_http,
        ),
        webhooks=WebhookDispatcher(
            store=webhook_store,
            sender=webhook_sender,
            secrets=secrets,
            clock=clock,
            schedule=[timedelta(seconds=wait) for wait in settings.webhook_retry_schedule_seconds],
            timeout=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
        ),
        webhook_sender=webhook_sender,
        access_tokens=access_tokens,
        api_clients=ApiClients(
            store=SqlApiClientStore(engine),
            seen=SqlSeenAssertions(engine),
            audit=audit,
            clock=clock,
            limiter=FailureLimiter(),
        ),
        local_accounts=local_accounts,
        device_codes=DeviceCodes(store=SqlDeviceCodeStore(engine), clock=clock, org_id=DEFAULT_ORG_ID),
        directory=directory,
        provisioning_tokens=ProvisioningTokens(store=SqlProvisioningTokenStore(engine), audit=audit, clock=clock),
        user_import=UserImport(directory=directory, store=directory_store, audit=audit, clock=clock),
        identity_providers=identity_providers,
        oidc_sign_in=OidcSignIn(
            providers=identity_providers,
            api=HttpOidcProviderApi(),
            directory=sign_in_directory,
            failures=enrollment_requests,
            clock=clock,
        ),
        enrollment_portal=EnrollmentPortal(
            directory=sign_in_directory,
            providers=identity_providers,
            profiles=profiles,
            failures=enrollment_requests,
            terms=terms,
            groups=directory,
            clock=clock,
        ),
        enrollment_attempts=EnrollmentAttempts(store=SqlAttemptStore(engine), clock=clock),
        device_categories=DeviceCategories(store=category_store, clock=clock),
        terms=terms,
        corporate_identifiers=CorporateIdentifiers(store=corporate_identifier_store, audit=audit, clock=clock),
        enrollment_managers=EnrollmentManagers(store=enrollment_manager_store, audit=audit, clock=clock),
        enrollment_gate=enrollment_gate,
        enrollment_records=enrollment_records,
        portal_key=hmac.new(master_key, b"muster enrollment portal cookies", hashlib.sha256).digest(),
        assignment_filters=AssignmentFilters(
            store=assignment_filter_store, users=restrictions, audit=audit, clock=clock
        ),
        enrollment_restrictions=restrictions,
        enrollment_type_profiles=EnrollmentTypeProfiles(
            store=SqlEnrollmentTypeProfileStore(engine), audit=audit, clock=clock
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
        write_private(path, token.encode() + b"\n")
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
    write_private(key_path, private_key_pem(key))
    write_private(cert_path, certificate_pem(certificate) + certificate_pem(container.identity.authority.certificate))
