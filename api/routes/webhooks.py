"""Partner webhooks: subscribe to a product's or an organisation's events (signed POSTs, retried)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, DbId, SessionDep
from api.paging import PAGED, Cursor, announce
from trace import webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("", status_code=201, response_model=webhooks.WebhookIssued)
def create(session: SessionDep, actor: CurrentActor, data: webhooks.WebhookCreate) -> webhooks.WebhookIssued:
    """Subscribe a URL to one product's or one organisation's events; the signing secret is shown once."""
    return webhooks.create_subscription(session=session, actor=actor, data=data)


@router.get("", response_model=list[webhooks.WebhookPublic])
def list_(session: SessionDep, actor: CurrentActor) -> list[webhooks.WebhookPublic]:
    """Your organisation's subscriptions (every one for the province admin)."""
    return [webhooks.WebhookPublic.model_validate(s) for s in webhooks.list_subscriptions(session=session, actor=actor)]


@router.get("/{subscription_id}", response_model=webhooks.WebhookPublic)
def get(session: SessionDep, actor: CurrentActor, subscription_id: DbId) -> webhooks.WebhookPublic:
    """One subscription."""
    return webhooks.WebhookPublic.model_validate(
        webhooks.get_subscription(session=session, actor=actor, subscription_id=subscription_id)
    )


@router.delete("/{subscription_id}", response_model=webhooks.WebhookPublic)
def delete(session: SessionDep, actor: CurrentActor, subscription_id: DbId) -> webhooks.WebhookPublic:
    """Stop a subscription (kept, inactive; deliveries still pending fail)."""
    return webhooks.WebhookPublic.model_validate(
        webhooks.delete_subscription(session=session, actor=actor, subscription_id=subscription_id)
    )


@router.get("/{subscription_id}/deliveries", response_model=list[webhooks.DeliveryPublic], responses=PAGED)
def deliveries(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    subscription_id: DbId,
    status: webhooks.DeliveryStatus | None = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[webhooks.DeliveryPublic]:
    """A subscription's deliveries, newest first: status, attempts, the last answer or error."""
    found = webhooks.list_deliveries(
        session=session, actor=actor, subscription_id=subscription_id, status=status, cursor=cursor, limit=limit
    )
    announce(request, response, found)
    return [webhooks.DeliveryPublic.model_validate(d) for d in found]
