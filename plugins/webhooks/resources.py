"""Falcon resources of the webhooks plugin (/webhooks/...): thin, they validate (through
@endpoint), call the service and shape the answer. Every route needs `webhooks.manage`
(admins): another school's endpoints and deliveries are 404s."""

from __future__ import annotations

from typing import Any, cast

import falcon

from learnplat.plugin import PageQuery, conditional, dump, endpoint, paginate

from .models import Endpoint
from .schemas import (
    DeliveriesRequeuedOut,
    DeliveryAttemptOut,
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    EndpointCreatedOut,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    EndpointQuery,
    EventTypeList,
    EventTypeOut,
    MessageStatus,
    RedeliverRangeIn,
    RotateIn,
    RotateOut,
)
from .services import WebhooksService, webhook_id

PERM = "webhooks.manage"


def endpoint_out(row: Endpoint) -> EndpointOut:
    return EndpointOut(id=row.id, url=row.url, description=row.description,
                       event_types=list(row.event_types), enabled=row.enabled,
                       disabled_reason=row.disabled_reason, disabled_at=row.disabled_at,
                       created_by=row.created_by, created_at=row.created_at,
                       updated_at=row.updated_at)


def delivery_fields(m: Any) -> dict[str, Any]:
    return {"id": m.id, "endpoint_id": int(m.ref), "webhook_id": webhook_id(m.key),
            "event_id": m.event_id, "event_type": m.event_type,
            "status": cast(MessageStatus, m.status), "attempts": m.attempts,
            "created_at": m.created_at, "next_attempt_at": m.next_attempt_at,
            "last_attempt_at": m.last_attempt_at, "delivered_at": m.delivered_at,
            "last_status": m.last_status, "last_error": m.last_error}


def delivery_out(m: Any) -> DeliveryOut:
    return DeliveryOut(**delivery_fields(m))


def redelivered(messages: list[Any]) -> DeliveriesRequeuedOut:
    return DeliveriesRequeuedOut(redelivered=len(messages), ids=[m.id for m in messages])


class _Resource:
    def __init__(self, service: WebhooksService):
        self.service = service


class EndpointCollection(_Resource):
    @endpoint(permission=PERM, query=EndpointQuery, response=EndpointPage,
              summary="The school's webhook endpoints, oldest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: EndpointQuery) -> EndpointPage:
        q = Endpoint.select()
        if query.enabled is not None:
            q = q.where(Endpoint.enabled == query.enabled)
        page = paginate(q, [Endpoint.id], query, endpoint_out)
        return EndpointPage(**page)

    @endpoint(permission=PERM, body=EndpointIn, response=EndpointCreatedOut, status=201,
              errors=(409,),
              summary="Add a webhook endpoint; the answer carries its signing secret, once")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: EndpointIn) -> EndpointCreatedOut:
        """The URL must be https:// and reach a public address (422 `unsafe_url` otherwise,
        unless the operator allows private networks); each of `event_types` must name or match
        a published event (422). 409 `too_many_endpoints` past the school's maximum. The
        `secret` is never shown again: rotate it to get a new one."""
        row, secret = self.service.create(body.url, body.event_types, body.description,
                                          body.enabled, req.context.principal.user_id)
        resp.location = f"/webhooks/endpoints/{row.id}"
        return EndpointCreatedOut(**endpoint_out(row).model_dump(), secret=secret)


class EndpointResource(_Resource):
    def _current(self, endpoint_id: int) -> bytes:
        return dump(endpoint_out(self.service.get(endpoint_id)))

    @endpoint(permission=PERM, response=EndpointOut, errors=(404,), etag=True,
              summary="A webhook endpoint (never its secret)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int
               ) -> EndpointOut:
        return endpoint_out(self.service.get(endpoint_id))

    @endpoint(permission=PERM, body=EndpointPatch, response=EndpointOut, errors=(404,),
              etag=True, summary="Change an endpoint's URL, description, event types or "
                                 "enabled")
    def on_patch(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int, *,
                 body: EndpointPatch) -> EndpointOut:
        """`enabled: true` re-enables an endpoint the delivery engine disabled (a 410 answer,
        days of failures); redeliver what failed meanwhile with POST .../redeliver."""
        pre = conditional.precondition(req, lambda: self._current(endpoint_id))
        row = self.service.update(endpoint_id, body.model_dump(exclude_unset=True), pre)
        out = endpoint_out(row)
        conditional.send_etag(resp, dump(out))
        return out

    @endpoint(permission=PERM, status=204, errors=(404,), etag=True,
              summary="Delete an endpoint, its secrets, queued deliveries and their log")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int) -> None:
        pre = conditional.precondition(req, lambda: self._current(endpoint_id))
        self.service.delete(endpoint_id, pre)


class RotateSecret(_Resource):
    @endpoint(permission=PERM, body=RotateIn, response=RotateOut, errors=(404,),
              summary="A new signing secret; the old one keeps signing for overlap_hours")
    def on_post(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int, *,
                body: RotateIn) -> RotateOut:
        """During the overlap each delivery carries two signatures (`webhook-signature:
        v1,<new> v1,<old>`), so the receiver can switch to the new secret at its pace."""
        secret, until = self.service.rotate(endpoint_id, body.overlap_hours)
        return RotateOut(endpoint_id=endpoint_id, secret=secret, previous_expires_at=until)


class EndpointDeliveries(_Resource):
    @endpoint(permission=PERM, query=DeliveryQuery, response=DeliveryPage, errors=(404,),
              summary="The endpoint's delivery log, newest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int, *,
               query: DeliveryQuery) -> DeliveryPage:
        before = int(query.cursor) if query.cursor else None
        found = self.service.deliveries(
            endpoint_id, status=query.status, event_type=query.event_type, since=query.since,
            until=query.until, before_id=before, limit=query.limit + 1)
        return delivery_page(found, query)


def delivery_page(found: list[Any], query: PageQuery) -> DeliveryPage:
    more = len(found) > query.limit
    found = found[:query.limit]
    return DeliveryPage(items=[delivery_out(m) for m in found],
                        next_cursor=str(found[-1].id) if more and found else None)


class DeliveryResource(_Resource):
    @endpoint(permission=PERM, response=DeliveryDetailOut, errors=(404,),
              summary="A delivery: what was sent and every attempt (status, latency, the "
                      "first bytes of the answer)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, delivery_id: int
               ) -> DeliveryDetailOut:
        m = self.service.delivery(delivery_id)
        log = [DeliveryAttemptOut(id=a.id, at=a.at, status=a.status, latency_ms=a.latency_ms,
                          answer=a.answer, error=a.error)
               for a in self.service.attempts(m.id)]
        return DeliveryDetailOut(**delivery_fields(m), payload=m.payload or {},
                                 attempt_log=log)


class RedeliverOne(_Resource):
    @endpoint(permission=PERM, response=DeliveriesRequeuedOut, errors=(404,), status=202,
              summary="Send a delivery again (same webhook-id and body), whatever its status")
    def on_post(self, req: falcon.Request, resp: falcon.Response, delivery_id: int
                ) -> DeliveriesRequeuedOut:
        return redelivered(self.service.redeliver(delivery_id))


class RedeliverRange(_Resource):
    @endpoint(permission=PERM, body=RedeliverRangeIn, response=DeliveriesRequeuedOut, errors=(404,),
              status=202,
              summary="Send again the endpoint's deliveries of a time range (failed ones by "
                      "default)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int, *,
                body: RedeliverRangeIn) -> DeliveriesRequeuedOut:
        """After an outage: `{"since": "...", "until": "..."}` queues again every failed
        delivery queued in that range, oldest first, each with its own webhook-id."""
        return redelivered(self.service.redeliver_range(endpoint_id, body.since, body.until,
                                                        body.status))


class TestPing(_Resource):
    @endpoint(permission=PERM, response=DeliveryOut, errors=(404, 409), status=202,
              summary="Queue a `webhook.test` delivery to the endpoint")
    def on_post(self, req: falcon.Request, resp: falcon.Response, endpoint_id: int
                ) -> DeliveryOut | None:
        """Check a receiver end to end: the ping is signed and logged like any delivery;
        its `data` is `{endpoint_id, school}`."""
        return delivery_out(self.service.ping(endpoint_id))


class EventTypes(_Resource):
    @endpoint(permission=PERM, response=EventTypeList,
              summary="The event types endpoints may subscribe to, with the schema of `data`")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> EventTypeList:
        return EventTypeList(items=[
            EventTypeOut.model_validate({"name": name, "description": decl.description,
                                         "publisher": decl.plugin,
                                         "schema": decl.type.public_schema()})
            for name, decl in self.service.published().items()])
