"""The `muster` CLI drives a running server over its admin API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from typer.testing import CliRunner, Result

from muster.cli.main import app
from muster.pki.ca import CertificateAuthority
from muster.pki.certs import certificate_pem, private_key_pem
from muster.protocols.apple import plist
from muster.simulators.apns import issue_push_certificate
from muster.simulators.apple_device import VirtualAppleDevice
from tests.harness import fake_apple, running_muster


async def muster_cli(env: dict[str, str], *args: str) -> Result:
    # The CLI is a synchronous HTTP client: run it in a thread so the server in this event loop can answer.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_push_certificate_profiles_devices_and_actions(tmp_path: Path) -> None:
    async with fake_apple(tmp_path / "apple") as apple, running_muster(tmp_path / "m", apple=apple) as muster:
        env = {
            "MUSTER_URL": muster.base_url,
            "MUSTER_TOKEN": muster.admin_token,
            "MUSTER_CA_FILE": str(muster.tls_ca_file),
        }
        csr_file = tmp_path / "push.csr"
        result = await muster_cli(env, "push-certificate", "csr", "-o", str(csr_file))
        assert result.exit_code == 1 and "send both user and device information to Apple" in result.output
        result = await muster_cli(env, "push-certificate", "csr", "--agree", "-o", str(csr_file))
        assert result.exit_code == 0, result.output
        certificate = tmp_path / "push.pem"
        certificate.write_bytes(issue_push_certificate(csr_file.read_bytes(), topic=apple.apns.topic))
        result = await muster_cli(env, "push-certificate", "upload", str(certificate), "--apple-id", "it@example.com")
        assert result.exit_code == 0 and apple.apns.topic in result.output

        profile_file = tmp_path / "enroll.mobileconfig"
        result = await muster_cli(env, "profiles", "export", "--user", "ada@example.com", "-o", str(profile_file))
        assert result.exit_code == 0, result.output
        profile = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile_file.read_bytes())
        async with httpx.AsyncClient(verify=profile.ssl_context()) as http:
            device = VirtualAppleDevice(http=http)
            await device.enroll(profile_file.read_bytes())
            await device.poll()
            result = await muster_cli(env, "devices", "list", "--json")
            assert result.exit_code == 0, result.output
            [listed] = json.loads(result.output)
            assert listed["serialNumber"] == device.serial_number

            result = await muster_cli(
                env, "devices", "action", "setDeviceName", listed["id"], "-p", "deviceName=Kiosk-7"
            )
            assert result.exit_code == 0 and "queued for 1 device" in result.output
            await device.poll()
            assert device.facts.device_name == "Kiosk-7"
            result = await muster_cli(env, "devices", "action", "resetPasscode", "no-such-device")
            assert result.exit_code == 0 and "device not found" in result.output

        result = await muster_cli({**env, "MUSTER_TOKEN": "wrong"}, "devices", "list")
        assert result.exit_code == 1 and "401" in result.output


def test_vendor_signing_happens_offline(tmp_path: Path) -> None:
    vendor_ca = CertificateAuthority.generate("Apple Worldwide Developer Relations (test)")
    vendor_certificate, vendor_key = vendor_ca.issue_tls_server_certificate(["mdm-vendor.example.com"])
    files = {
        "vendor.pem": certificate_pem(vendor_certificate),
        "vendor.key": private_key_pem(vendor_key),
        "wwdr.pem": certificate_pem(vendor_ca.certificate),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    from muster.pki.push_certificate import generate_push_csr

    csr_pem, _ = generate_push_csr(common_name="Example MDM Push")
    (tmp_path / "push.csr").write_bytes(csr_pem)
    output = tmp_path / "request.b64"
    result = CliRunner().invoke(
        app,
        [
            "push-certificate",
            "vendor-sign",
            str(tmp_path / "push.csr"),
            "--vendor-certificate",
            str(tmp_path / "vendor.pem"),
            "--vendor-key",
            str(tmp_path / "vendor.key"),
            "--chain",
            str(tmp_path / "wwdr.pem"),
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    import base64

    request = plist.loads(base64.b64decode(output.read_bytes()))
    csr_der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(request["PushCertRequestCSR"]) == csr_der
    vendor_certificate.public_key().verify(
        base64.b64decode(request["PushCertSignature"]), csr_der, padding.PKCS1v15(), hashes.SHA256()
    )
