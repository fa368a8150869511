"""Falcon resources of /lti/passbacks (instructors: their courses; admins: any): the grades
sent back to platforms, their attempts, redelivery. Thin: @endpoint validates, the service
acts."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.plugin import DestinationInfo, MessageInfo, endpoint

from .schemas import LtiPassbackAttemptOut, LtiPassbackDetail, LtiPassbackEntry, LtiPassbackPage
from .schemas import LtiPassbackQuery as Query
from .services import READ, REDELIVER, PassbackService

TAGS = ("lti",)


def entry_fields(svc: PassbackService, m: MessageInfo,
                 destinations: dict[str, DestinationInfo | None] | None = None
                 ) -> dict[str, Any]:
    """The entry of `m`; `destinations` (ref -> destination) is a page's cache: one read
    per platform, not per entry."""
    p = m.payload if isinstance(m.payload, dict) else {}
    score = p.get("score") or {}
    if destinations is None:
        destinations = {}
    if m.ref not in destinations:
        destinations[m.ref] = svc.destination(m)
    d = destinations[m.ref]
    return {"id": m.id, "course_id": p.get("course_id", 0), "module_id": p.get("module_id"),
            "user_id": p.get("user_id", 0), "platform_id": p.get("platform_id", 0),
            "target_id": p.get("target_id", 0), "event_type": m.event_type,
            "event_id": m.event_id, "lineitem": p.get("lineitem", ""),
            "score_given": score.get("scoreGiven"), "score_maximum": score.get("scoreMaximum"),
            "status": m.status, "attempts": m.attempts, "created_at": m.created_at,
            "next_attempt_at": m.next_attempt_at, "last_attempt_at": m.last_attempt_at,
            "delivered_at": m.delivered_at, "last_status": m.last_status,
            "last_error": m.last_error,
            "platform_disabled_at": d.disabled_at if d is not None else None,
            "platform_disabled_reason": d.disabled_reason if d is not None else None}


def detail_out(svc: PassbackService, m: MessageInfo) -> LtiPassbackDetail:
    attempts = [LtiPassbackAttemptOut(at=a.at, status=a.status, latency_ms=a.latency_ms,
                                      answer=a.answer, error=a.error)
                for a in svc.attempts(m.id)]
    score = (m.payload or {}).get("score", {}) if isinstance(m.payload, dict) else {}
    return LtiPassbackDetail(**entry_fields(svc, m), score=score, attempts_log=attempts)


class _Resource:
    def __init__(self, service: PassbackService):
        self.service = service


class PassbacksResource(_Resource):
    @endpoint(permission=READ, query=Query, response=LtiPassbackPage, tags=TAGS, cost=5,
              summary="Grades sent back to LTI platforms, newest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: Query
               ) -> LtiPassbackPage:
        """An instructor sees their courses' passbacks, an admin every one. Filter by
        `course_id`, `user_id` (the learnplat learner) and `status`; page with `before` = the
        previous page's next_cursor."""
        items, cursor = self.service.entries(
            req.context.principal, course_id=query.course_id, user_id=query.user_id,
            status=query.status, before_id=query.before, limit=query.limit)
        seen: dict[str, DestinationInfo | None] = {}
        return LtiPassbackPage(items=[LtiPassbackEntry(**entry_fields(self.service, m, seen))
                                      for m in items],
                               next_cursor=str(cursor) if cursor is not None else None)


class PassbackResource(_Resource):
    @endpoint(permission=READ, response=LtiPassbackDetail, errors=(404,), tags=TAGS,
              summary="One passback: the score sent and every attempt")
    def on_get(self, req: falcon.Request, resp: falcon.Response, passback_id: int
               ) -> LtiPassbackDetail:
        """Each attempt with the platform's status and answer, or why none came (the token
        endpoint's refusal, no answer)."""
        return detail_out(self.service, self.service.entry(req.context.principal,
                                                           passback_id))


class RedeliverPassback(_Resource):
    @endpoint(permission=REDELIVER, response=LtiPassbackDetail, errors=(404,), tags=TAGS,
              summary="Send one passback again")
    def on_post(self, req: falcon.Request, resp: falcon.Response, passback_id: int
                ) -> LtiPassbackDetail:
        """Whatever its status (a score carries its time, so an old one never replaces a
        newer grade); due at once, its attempts stay. An admin's redelivery also switches
        the platform on again when the delivery engine had stopped sending to it."""
        m = self.service.redeliver(req.context.principal, passback_id)
        return detail_out(self.service, m)
