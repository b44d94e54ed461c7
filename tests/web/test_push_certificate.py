"""The APNs push certificate through the admin API: CSR, upload, renewal that must keep the topic, expiry warning."""

from __future__ import annotations

from pathlib import Path

import httpx

from muster.simulators.apns import issue_push_certificate
from tests.harness import DM, running_muster

CERT = f"{DM}/applePushNotificationCertificate"
CSR = f"{CERT}/downloadApplePushNotificationCertificateSigningRequest"


async def _csr(admin: httpx.AsyncClient) -> bytes:
    response = await admin.get(CSR)
    assert response.status_code == 200
    csr = response.json()["value"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----") and "PRIVATE KEY" not in response.text
    return csr.encode()


async def test_upload_renewal_and_expiry_warning(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        no_consent = await admin.get(CSR)  # APNS-02 (seed 003:1600-1645): consent before the CSR
        assert no_consent.status_code == 412 and "consentToDataSharing" in no_consent.json()["error"]["message"]
        consent = await admin.post(f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing")
        assert consent.status_code == 200 and consent.json()["granted"] is True
        assert "send both user and device information to Apple" in consent.json()["consentText"]

        early = await admin.patch(
            CERT, json={"certificate": "-----BEGIN CERTIFICATE-----\n", "appleIdentifier": "a@b.c"}
        )
        assert early.status_code == 412 and "signing request first" in early.json()["error"]["message"]
        no_apple_id = await admin.patch(CERT, json={"certificate": "x"})  # APNS-04: the Apple ID is required
        assert no_apple_id.status_code == 400 and "appleIdentifier" in no_apple_id.json()["error"]["message"]

        topic = "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555"
        first = await admin.patch(
            CERT,
            json={
                "certificate": issue_push_certificate(await _csr(admin), topic=topic).decode(),
                "appleIdentifier": "it@example.com",
            },
        )
        assert first.status_code == 200, first.text
        assert first.json()["topicIdentifier"] == topic and first.json()["expiryWarning"] is None
        assert first.json()["appleIdentifier"] == "it@example.com"

        other_key = await _csr(admin)
        await _csr(admin)  # a newer request: the certificate for the older one no longer matches the pending key
        mismatch = await admin.patch(
            CERT,
            json={"certificate": issue_push_certificate(other_key, topic=topic).decode(), "appleIdentifier": "a@b.c"},
        )
        assert mismatch.status_code == 400 and "private key" in mismatch.json()["error"]["message"]

        new_topic = issue_push_certificate(await _csr(admin)).decode()  # a brand-new certificate: another topic
        refused = await admin.patch(CERT, json={"certificate": new_topic, "appleIdentifier": "it@example.com"})
        assert refused.status_code == 400
        assert "re-enroll" in refused.json()["error"]["message"] and "Renew" in refused.json()["error"]["message"]
        assert (await admin.get(CERT)).json()["certificateSerialNumber"] == first.json()["certificateSerialNumber"]

        renewal = issue_push_certificate(await _csr(admin), topic=topic, days=20).decode()
        renewed = await admin.patch(CERT, json={"certificate": renewal, "appleIdentifier": "it@example.com"})
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        assert body["topicIdentifier"] == topic
        assert body["certificateSerialNumber"] != first.json()["certificateSerialNumber"]
        assert "days left" in body["expiryWarning"]
        assert body["status"] == "active" and body["daysUntilExpiration"] in (19, 20)
        assert body["subjectId"] == "11111111-2222-3333-4444-555555555555"  # APNS-10: the topic's GUID

        deleted = await admin.delete(CERT)
        assert deleted.status_code == 204
        assert (await admin.get(CERT)).json()["certificateUploadStatus"] == "notUploaded"
        profile = await admin.post(f"{DM}/exportAppleEnrollmentProfile", json={})
        assert profile.status_code == 412  # APNS-01: no Apple enrollment without an active push certificate

        audit = await muster.container.engine.connect()
        try:
            from sqlalchemy import select

            from muster.store.tables_audit import audit_log

            details = (await audit.execute(select(audit_log.c.detail))).scalars()
            rows = [(change["activity"], change["result"]) for d in details for change in d.get("changes", [])]
        finally:
            await audit.close()
        assert ("uploadPushCertificate", "failure") in rows and ("uploadPushCertificate", "success") in rows
