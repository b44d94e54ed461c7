"""Configuration: the profile-signing identity an operator may supply, and the one Muster makes itself."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from muster.app import build_container
from muster.app.loaders import load_profile_signer
from muster.config import ConfigurationError, Settings, load_settings
from muster.pki.ca import CertificateAuthority
from muster.pki.certs import certificate_pem, generate_rsa_key, private_key_pem
from muster.pki.secretbox import SecretBox
from muster.store.migrate import upgrade

ROOT = CertificateAuthority.generate("Operator Root CA")
SIGNER_CERT, SIGNER_KEY = ROOT.issue_signing_certificate("Operator Profile Signing")


def signer_settings(tmp_path: Path, cert_pem: bytes | None, key_pem: bytes | None) -> Settings:
    """Settings naming cert.pem and key.pem in `tmp_path`, written only when given."""
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    if cert_pem is not None:
        cert_file.write_bytes(cert_pem)
    if key_pem is not None:
        key_file.write_bytes(key_pem)
    return Settings(
        data_dir=tmp_path,
        master_key=base64.b64encode(SecretBox.generate_key()).decode(),
        profile_signing_cert_file=cert_file,
        profile_signing_key_file=key_file,
    )


@pytest.mark.parametrize("given", ["profile_signing_cert_file", "profile_signing_key_file"])
def test_signing_certificate_and_key_come_together(tmp_path: Path, given: str) -> None:
    with pytest.raises(ConfigurationError, match="set both MUSTER_PROFILE_SIGNING_CERT_FILE"):
        load_settings(**{given: tmp_path / "x.pem"})


def test_no_signing_files_means_muster_makes_its_own(tmp_path: Path) -> None:
    assert load_profile_signer(Settings(data_dir=tmp_path)) is None


@pytest.mark.parametrize(
    ("cert_pem", "key_pem", "message"),
    [
        (None, private_key_pem(SIGNER_KEY), r"cannot read .*cert\.pem: No such file"),
        (certificate_pem(SIGNER_CERT), None, r"cannot read .*key\.pem: No such file"),
        (b"not a certificate", private_key_pem(SIGNER_KEY), "no valid PEM certificate"),
        (certificate_pem(SIGNER_CERT), b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "no usable unencrypted PEM private key"),
        (certificate_pem(SIGNER_CERT), private_key_pem(SIGNER_KEY, b"secret"), "no usable unencrypted"),
        (certificate_pem(SIGNER_CERT), private_key_pem(generate_rsa_key()), "does not match the certificate"),
    ],
    ids=["missing-cert", "missing-key", "garbage-cert", "garbage-key", "encrypted-key", "wrong-key"],
)
def test_unusable_signing_files_are_configuration_errors(
    tmp_path: Path, cert_pem: bytes | None, key_pem: bytes | None, message: str
) -> None:
    settings = signer_settings(tmp_path, cert_pem, key_pem)
    with pytest.raises(ConfigurationError, match=message):
        load_profile_signer(settings)


async def test_build_container_refuses_an_unusable_signer_before_touching_the_database(tmp_path: Path) -> None:
    settings = signer_settings(tmp_path, b"not a certificate", private_key_pem(SIGNER_KEY))
    with pytest.raises(ConfigurationError, match="profile signing identity"):
        await build_container(settings)
    assert not (tmp_path / "muster.db").exists()


async def test_operator_signer_and_its_chain_replace_our_own(tmp_path: Path) -> None:
    intermediate = ROOT.certificate  # any certificate after the first travels as the chain
    settings = signer_settings(
        tmp_path, certificate_pem(SIGNER_CERT) + certificate_pem(intermediate), private_key_pem(SIGNER_KEY)
    )
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    container = await build_container(settings)
    try:
        signer = container.identity.profile_signer
        assert signer.certificate == SIGNER_CERT
        assert signer.key.public_key() == SIGNER_KEY.public_key()
        assert signer.chain == (intermediate,)
    finally:
        await container.aclose()


async def test_muster_makes_a_signing_certificate_not_a_server_certificate(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, master_key=base64.b64encode(SecretBox.generate_key()).decode())
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    container = await build_container(settings)
    try:
        signer = container.identity.profile_signer
        eku = signer.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH not in eku
        assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
        with pytest.raises(x509.ExtensionNotFound):
            signer.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert signer.chain == (container.identity.authority.certificate,)
        assert container.identity.authority.issued(signer.certificate)
    finally:
        await container.aclose()
