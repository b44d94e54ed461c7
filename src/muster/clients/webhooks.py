"""The HTTP client that delivers webhooks: one POST per attempt, no redirects followed, bounded in time."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from muster.services.webhooks import WebhookSendError


class HttpWebhookSender:
    """`verify` is a CA bundle path for receivers with a private CA, else the system trust store."""

    def __init__(self, *, verify: str | bool = True, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(verify=verify, transport=transport, follow_redirects=False)

    async def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
        try:
            response = await self._client.post(url, content=body, headers=dict(headers), timeout=timeout)
        except httpx.TimeoutException:
            raise WebhookSendError(f"no answer within {timeout:g} s") from None
        except httpx.HTTPError as error:
            raise WebhookSendError(f"{type(error).__name__}: {error}") from None
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
