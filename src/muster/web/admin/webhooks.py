"""Muster webhook subscriptions, Graph-style: CRUD, secret rotation and the per-subscription delivery log.

The signing secret is returned only when created or rotated (`secret`); it is stored encrypted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.rbac import Permission, Principal
from muster.services.webhooks import SubscriptionRequest
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/webhookSubscriptions", tags=["webhookSubscriptions"])

Reader = Annotated[Principal, Depends(require(Permission.WEBHOOKS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.WEBHOOKS_WRITE))]


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notificationUrl: str | None = Field(default=None, max_length=2048)
    events: list[str] | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=400)

    def request(self) -> SubscriptionRequest:
        return SubscriptionRequest(self.notificationUrl, self.events, self.description)


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def graph_subscription(row: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    found = {
        "@odata.type": "#muster.webhookSubscription",
        "id": row["id"],
        "notificationUrl": row["notification_url"],
        "events": row["events"],
        "description": row["description"],
        "createdBy": row["created_by"],
        "createdDateTime": _time(row["created_at"]),
        "lastModifiedDateTime": _time(row["updated_at"]),
    }
    if secret is not None:
        found["secret"] = secret
    return found


def graph_delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": "#muster.webhookDelivery",
        "id": row["id"],
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "nextAttemptDateTime": _time(row["next_attempt_at"]),
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "createdDateTime": _time(row["created_at"]),
        "deliveredDateTime": _time(row["delivered_at"]),
    }


_SUBSCRIPTIONS = GraphCollection(
    "deviceManagement/webhookSubscriptions",
    {
        "id": str,
        "notificationUrl": str,
        "description": str,
        "createdBy": str,
        "createdDateTime": datetime,
        "lastModifiedDateTime": datetime,
    },
    ("events",),
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_webhook_subscriptions(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).webhook_subscriptions.all(admin.org_id)
    return _SUBSCRIPTIONS.response(request, [graph_subscription(row) for row in rows])


@router.post("", status_code=201)
async def create_webhook_subscription(request: Request, body: SubscriptionBody, admin: Writer) -> dict[str, Any]:
    row, secret = await container(request).webhook_subscriptions.create(
        org_id=admin.org_id, actor=admin.display_name, request=body.request()
    )
    return graph_subscription(row, secret)


@router.get("/{subscription_id}")
async def get_webhook_subscription(request: Request, subscription_id: str, admin: Reader) -> dict[str, Any]:
    return graph_subscription(await container(request).webhook_subscriptions.get(admin.org_id, subscription_id))


@router.patch("/{subscription_id}")
async def update_webhook_subscription(
    request: Request, subscription_id: str, body: SubscriptionBody, admin: Writer
) -> dict[str, Any]:
    row = await container(request).webhook_subscriptions.update(admin.org_id, subscription_id, body.request())
    return graph_subscription(row)


@router.post("/{subscription_id}/rotateSecret")
async def rotate_webhook_secret(request: Request, subscription_id: str, admin: Writer) -> dict[str, Any]:
    row, secret = await container(request).webhook_subscriptions.rotate_secret(admin.org_id, subscription_id)
    return graph_subscription(row, secret)


@router.delete("/{subscription_id}", status_code=204)
async def delete_webhook_subscription(request: Request, subscription_id: str, admin: Writer) -> Response:
    await container(request).webhook_subscriptions.delete(admin.org_id, subscription_id)
    return Response(status_code=204)


_DELIVERIES = GraphCollection(
    "deviceManagement/webhookSubscriptions('{subscription_id}')/deliveries",
    {
        "id": str,
        "eventId": str,
        "eventType": str,
        "status": str,
        "attempts": int,
        "nextAttemptDateTime": datetime,
        "lastStatusCode": int,
        "lastError": str,
        "createdDateTime": datetime,
        "deliveredDateTime": datetime,
    },
    default_orderby="createdDateTime desc",
)


@router.get("/{subscription_id}/deliveries", dependencies=[ODATA_QUERY_OPTIONS])
async def list_webhook_deliveries(request: Request, subscription_id: str, admin: Reader) -> dict[str, Any]:
    rows = await container(request).webhook_subscriptions.deliveries(admin.org_id, subscription_id)
    return _DELIVERIES.response(request, [graph_delivery(row) for row in rows])
