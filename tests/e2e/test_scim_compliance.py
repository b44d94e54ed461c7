"""scim2-tester's RFC 7643/7644 checks against Muster's /scim/v2, over HTTPS with a provisioning token."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import httpx
from scim2_client import BaseSyncSCIMClient
from scim2_client.errors import RequestNetworkException
from scim2_tester import Status, check_server

from tests.harness import running_muster


class HttpxScimClient(BaseSyncSCIMClient):
    """scim2-client over httpx (its own engine wants httpx2, which Muster does not use)."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url, base = self.client.build_request("GET", endpoint).url, self.client.base_url
        return url.scheme == base.scheme and url.netloc == base.netloc and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.RequestError as error:
            raise RequestNetworkException() from error


def run_checks(base_url: str, secret: str, ca_file: Path) -> list[Any]:
    with httpx.Client(
        base_url=base_url,
        verify=ssl.create_default_context(cafile=ca_file),
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    ) as http:
        return check_server(HttpxScimClient(http))


async def test_scim2_tester_finds_no_failure(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        created = await admin.post("/graph/beta/directory/provisioningTokens", json={"displayName": "scim2-tester"})
        secret = created.json()["secretText"]
        results = await asyncio.to_thread(run_checks, f"{muster.base_url}/scim/v2", secret, muster.tls_ca_file)

    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL, Status.DEVIATION)]
    assert not failures, "\n".join(f"{r.resource_type} {r.title}: {r.reason}" for r in failures)
    skipped = [r.title for r in results if r.status is Status.SKIPPED]
    assert not skipped, skipped
    assert len(results) > 50  # the checker really ran: discovery, then CRUD and PATCH on Users and Groups
