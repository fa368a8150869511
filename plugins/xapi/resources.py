"""Falcon resources of /xapi (admins): the school's LRS, the statements' delivery log and
redelivery. Thin: @endpoint validates, the service acts."""

from __future__ import annotations

from typing import Any, cast

import falcon

from learnplat.plugin import MessageInfo, ValidationFailed, endpoint

from .models import LrsConfig
from .schemas import (
    ActorMode,
    LrsDeliveryOut,
    LrsIn,
    LrsOut,
    StatementAttemptOut,
    StatementDetail,
    StatementEntry,
    StatementPage,
    StatementQuery,
    StatementsRedeliverIn,
    StatementsRequeuedOut,
)
from .services import XapiService

TAGS = ("xapi",)
PERMISSION = "xapi.manage"


def lrs_out(svc: XapiService, row: LrsConfig) -> LrsOut:
    d = svc.destination()
    delivery = None if d is None else LrsDeliveryOut(
        disabled_at=d.disabled_at, disabled_reason=d.disabled_reason,
        failing_since=d.failing_since, consecutive_failures=d.consecutive_failures,
        last_success_at=d.last_success_at)
    return LrsOut(endpoint=row.endpoint, key=row.key, secret_set=True,
                  actor=cast(ActorMode, row.actor_mode), home_page=row.home_page,
                  language=row.language, enabled=row.enabled,
                  delivery=delivery, created_at=row.created_at, updated_at=row.updated_at)


def _entry_fields(m: MessageInfo) -> dict[str, Any]:
    verb = (m.payload or {}).get("verb", {}) if isinstance(m.payload, dict) else {}
    return {"id": m.id, "statement_id": m.key,
            "verb": next(iter((verb.get("display") or {}).values()), ""),
            "verb_id": verb.get("id", ""), "event_type": m.event_type,
            "event_id": m.event_id, "status": m.status, "attempts": m.attempts,
            "created_at": m.created_at, "next_attempt_at": m.next_attempt_at,
            "last_attempt_at": m.last_attempt_at, "delivered_at": m.delivered_at,
            "last_status": m.last_status, "last_error": m.last_error}


def entry_out(m: MessageInfo) -> StatementEntry:
    return StatementEntry(**_entry_fields(m))


class _Resource:
    def __init__(self, service: XapiService):
        self.service = service


class LrsResource(_Resource):
    @endpoint(permission=PERMISSION, response=LrsOut, errors=(404,), tags=TAGS,
              summary="The school's learning record store (the secret is never shown)")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> LrsOut:
        """404 `lrs_not_configured` when none is set."""
        return lrs_out(self.service, self.service.require_config())

    @endpoint(permission=PERMISSION, body=LrsIn, response=LrsOut, tags=TAGS,
              summary="Set (or replace) the school's learning record store")
    def on_put(self, req: falcon.Request, resp: falcon.Response, *, body: LrsIn) -> LrsOut:
        """The endpoint is checked first (422 `unsafe_url`: a private address, or http where
        https is required); the secret is required the first time and kept when omitted
        later. Switching it on again (`enabled: true`) also clears a disabling by the delivery
        engine; failed statements are then sent again with POST /xapi/statements/redeliver.
        Statements are made of events from now on (none for the past)."""
        row = self.service.configure(endpoint=body.endpoint, key=body.key, secret=body.secret,
                                     actor=body.actor, home_page=body.home_page,
                                     language=body.language, enabled=body.enabled)
        return lrs_out(self.service, row)

    @endpoint(permission=PERMISSION, status=204, errors=(404,), tags=TAGS,
              summary="Remove the learning record store and its statements' log")
    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Statements not yet delivered are dropped with it."""
        self.service.remove()


class StatementsResource(_Resource):
    @endpoint(permission=PERMISSION, query=StatementQuery, response=StatementPage,
              errors=(404,), tags=TAGS,
              summary="The statements' delivery log, newest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: StatementQuery
               ) -> StatementPage:
        """Filter by `status`, `event_type` and a time range (`since` inclusive, `until`
        exclusive, on the time queued); page with `before` = the previous page's
        next_cursor."""
        self.service.require_config()
        if query.since and query.until and query.since >= query.until:
            raise ValidationFailed([{"field": "until", "message": "must be after since",
                                     "type": "bad_range"}])
        items = self.service.log(statuses=(query.status,) if query.status else (),
                                 event_type=query.event_type, since=query.since,
                                 until=query.until, before_id=query.before,
                                 limit=query.limit + 1)
        more = len(items) > query.limit
        items = items[:query.limit]
        return StatementPage(items=[entry_out(m) for m in items],
                             next_cursor=str(items[-1].id) if more else None)


class StatementResource(_Resource):
    @endpoint(permission=PERMISSION, response=StatementDetail, errors=(404,), tags=TAGS,
              summary="One statement of the log: what was sent and every attempt")
    def on_get(self, req: falcon.Request, resp: falcon.Response, statement_id: int
               ) -> StatementDetail:
        m = self.service.entry(statement_id)
        attempts = [StatementAttemptOut(at=a.at, status=a.status, latency_ms=a.latency_ms,
                               answer=a.answer, error=a.error)
                    for a in self.service.attempts(m.id)]
        return StatementDetail(**_entry_fields(m), statement=m.payload, attempts_log=attempts)


class RedeliverOne(_Resource):
    @endpoint(permission=PERMISSION, response=StatementEntry, errors=(404,), tags=TAGS,
              summary="Send one statement again")
    def on_post(self, req: falcon.Request, resp: falcon.Response, statement_id: int
                ) -> StatementEntry:
        """Whatever its status (a delivered one too: the LRS keeps one statement per id, so
        sending it again is harmless); it is due at once, its attempts stay in the log."""
        m = self.service.entry(statement_id)
        self.service.redeliver(ids=[m.id],
                               statuses=("failed", "delivered", "cancelled", "pending"))
        return entry_out(self.service.entry(m.id))


class RedeliverRange(_Resource):
    @endpoint(permission=PERMISSION, body=StatementsRedeliverIn,
              response=StatementsRequeuedOut, errors=(404,), tags=TAGS, cost=10,
              summary="Send again the statements of a time range (the failed ones by default)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: StatementsRedeliverIn
                ) -> StatementsRequeuedOut:
        """`since` inclusive, `until` exclusive, on the time queued."""
        if body.since >= body.until:
            raise ValidationFailed([{"field": "until", "message": "must be after since",
                                     "type": "bad_range"}])
        done = self.service.redeliver(since=body.since, until=body.until,
                                      statuses=tuple(body.statuses))
        return StatementsRequeuedOut(redelivered=len(done), ids=[m.id for m in done])
