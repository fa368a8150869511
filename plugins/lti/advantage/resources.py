"""Routes of the LTI Advantage services. The token endpoint, AGS and NRPS are peer-facing
(/lti/schools/{school}/platform/..., PUBLIC in learnplat's terms): a tool authenticates with
its signed client assertion, then with the access token (own_credentials: the routes read
the Authorization header themselves). AGS/NRPS answers use the IMS media types. The
instructors' list of scores (/lti/scores) is an ordinary X-Tenant route."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import falcon
import orjson
from pydantic import BaseModel

from learnplat.plugin import FORM, PUBLIC, LearnplatError, Unauthorized, endpoint, paginate

from .. import claims as c
from .models import LtiScoreEntry, LtiScoreLineItem
from .schemas import (
    LINEITEM,
    LINEITEMS,
    MEMBERSHIPS,
    RESULTS,
    SCORE,
    LtiScoreContext,
    LtiScoreIn,
    LtiScoreLineItemIn,
    LtiScoreLineItemOut,
    LtiScoreLineItemQuery,
    LtiScoreMember,
    LtiScoreMembershipQuery,
    LtiScoreMemberships,
    LtiScoreOut,
    LtiScorePage,
    LtiScoreQuery,
    LtiScoreResultOut,
    LtiScoreResultQuery,
    LtiScoreTokenIn,
    LtiScoreTokenOut,
)
from .services import TOKEN_SECONDS, Advantage, Caller, TokenRefused

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

TAGS = ("lti",)
READ_ITEMS = (c.SCOPE_LINEITEM, c.SCOPE_LINEITEM_READONLY)
PEER_ERRORS = (401, 403, 404, 503)


def _send(resp: falcon.Response, media_type: str, value: Any, status: int = 200) -> None:
    """An IMS answer: its media type, no null fields (the specs leave absent ones out)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    elif isinstance(value, list):
        value = [v.model_dump(mode="json", by_alias=True, exclude_none=True) for v in value]
    resp.status = status
    resp.data = orjson.dumps(value)
    resp.content_type = media_type


def _next(resp: falcon.Response, url: str, params: dict[str, Any]) -> None:
    """Link rel=next (lower-case parameters: pylti1p3 lower-cases the header it reads)."""
    given = {k: v for k, v in params.items() if v is not None}
    resp.append_header("Link", f'<{url}?{urlencode(given)}>; rel="next"')


def lineitem_out(plugin: LtiPlugin, row: LtiScoreLineItem) -> LtiScoreLineItemOut:
    return LtiScoreLineItemOut(
        id=plugin.urls.lineitem(row.course_id, row.id), scoreMaximum=row.score_maximum,
        label=row.label, resourceId=row.resource_id or None, tag=row.tag or None,
        resourceLinkId=str(row.module_id) if row.module_id is not None else None,
        startDateTime=row.start_at, endDateTime=row.end_at)


def score_out(e: LtiScoreEntry) -> LtiScoreOut:
    return LtiScoreOut(id=e.id, course_id=e.course_id, module_id=e.module_id,
                       lineitem_id=e.lineitem_id, user_id=e.user_id, tool_id=e.tool_id,
                       score_given=e.score_given, score_maximum=e.score_maximum,
                       activity_progress=e.activity_progress,
                       grading_progress=e.grading_progress, comment=e.comment,
                       timestamp=e.timestamp, created_at=e.created_at)


class _Resource:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self.svc = Advantage(plugin)

    @contextmanager
    def _bearer(self, resp: falcon.Response) -> Iterator[None]:
        try:
            yield
        except Unauthorized:
            # RFC 6750 3: a refused bearer token is answered with the challenge.
            resp.set_header("WWW-Authenticate", 'Bearer realm="lti", error="invalid_token"')
            raise

    def caller(self, req: falcon.Request, resp: falcon.Response, scopes: tuple[str, ...]
               ) -> Caller:
        """The tool `access_token` found before the body was read, if its token holds one
        of `scopes`."""
        found: Caller | None = getattr(req.context, "lti_caller", None)
        with self._bearer(resp):
            if found is None:
                found = self.svc.caller(req.get_header("Authorization"), scopes)
            self.svc.require_scope(found, scopes)
        return found


def access_token(resource: _Resource, req: falcon.Request) -> None:
    """The routes' own credentials (`own_credentials=`): the tool's access token, checked
    before the query and body are read, so a caller without one gets 401 (with the RFC 6750
    challenge), never a 422 about a body it may not send."""
    try:
        req.context.lti_caller = resource.svc.caller(req.get_header("Authorization"), ())
    except Unauthorized as exc:
        exc.headers["WWW-Authenticate"] = 'Bearer realm="lti", error="invalid_token"'
        raise


class TokenProblem(LearnplatError):
    """A refused token request as problem+json that also carries the RFC 6749 5.2 fields
    (`error`, `error_description`): what OAuth libraries read."""

    status, code, title = 400, "lti_token_scope", "Token request refused"


class Token(_Resource):
    @endpoint(permission=PUBLIC, body=LtiScoreTokenIn, content_type=FORM,
              response=LtiScoreTokenOut, tags=TAGS, errors=(400, 401, 503),
              summary="OAuth 2 token endpoint for tools (AGS, NRPS)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiScoreTokenIn) -> LtiScoreTokenOut:
        """Client credentials with a JWT client assertion (RFC 7523, LTI Security 1.0 4.1):
        iss = sub = the tool's client_id, aud = this URL (or the school's issuer), exp, iat
        and a jti never used before, signed with the tool's key; `scope` space-separated
        (only the scopes of the tool's registration are granted). A refusal is a problem
        (application/problem+json, `code` names the failed check) that also carries RFC 6749's
        `error` (invalid_client: 401; invalid_request, invalid_grant, invalid_scope,
        unsupported_grant_type: 400) and `error_description`, which OAuth libraries read."""
        resp.set_header("Cache-Control", "no-store")
        try:
            token, granted = self.svc.issue_token(body.grant_type, body.client_assertion_type,
                                                  body.client_assertion, body.scope)
        except TokenRefused as exc:
            problem = TokenProblem(exc.detail, code=exc.code, error=exc.error,
                                   error_description=exc.detail)
            problem.status = exc.status
            problem.title = self.plugin.problems[exc.code].title or problem.title
            if exc.status == 401:
                resp.set_header("WWW-Authenticate", 'Basic realm="lti"')
            raise problem from None
        return LtiScoreTokenOut(access_token=token, expires_in=TOKEN_SECONDS,
                                scope=" ".join(granted))


class LineItems(_Resource):
    @endpoint(permission=PUBLIC, own_credentials=access_token, query=LtiScoreLineItemQuery,
              response=list[LtiScoreLineItemOut], response_content_type=LINEITEMS,
              tags=TAGS, errors=PEER_ERRORS, summary="AGS: the course's line items")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: LtiScoreLineItemQuery) -> None:
        """Scope lineitem or lineitem.readonly. Filters resource_link_id, resource_id, tag;
        `limit`, and the next page in `Link: <...>; rel="next"`."""
        caller = self.caller(req, resp, READ_ITEMS)
        course = self.svc.context(caller, course_id)
        rows, more = self.svc.lineitems(course.id, query.resource_link_id, query.resource_id,
                                        query.tag, query.after, query.limit)
        if more and rows:
            _next(resp, self.plugin.urls.lineitems(course.id),
                  {**query.model_dump(exclude={"after"}), "after": rows[-1].id})
        _send(resp, LINEITEMS, [lineitem_out(self.plugin, r) for r in rows])

    @endpoint(permission=PUBLIC, own_credentials=access_token, body=LtiScoreLineItemIn,
              content_type=LINEITEM, response=LtiScoreLineItemOut, status=201,
              response_content_type=LINEITEM, tags=TAGS, errors=(*PEER_ERRORS, 422),
              summary="AGS: create a line item")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: LtiScoreLineItemIn) -> None:
        """Scope lineitem."""
        caller = self.caller(req, resp, (c.SCOPE_LINEITEM,))
        course = self.svc.context(caller, course_id)
        row = self.svc.create_lineitem(caller, course.id, body)
        out = lineitem_out(self.plugin, row)
        resp.location = out.id
        _send(resp, LINEITEM, out, 201)


class LineItem(_Resource):
    @endpoint(permission=PUBLIC, own_credentials=access_token, response=LtiScoreLineItemOut,
              response_content_type=LINEITEM, tags=TAGS, errors=PEER_ERRORS,
              summary="AGS: a line item")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               lineitem_id: int) -> None:
        caller = self.caller(req, resp, READ_ITEMS)
        course = self.svc.context(caller, course_id)
        _send(resp, LINEITEM, lineitem_out(self.plugin, self.svc.lineitem(course.id,
                                                                          lineitem_id)))

    @endpoint(permission=PUBLIC, own_credentials=access_token, body=LtiScoreLineItemIn,
              content_type=LINEITEM, response=LtiScoreLineItemOut,
              response_content_type=LINEITEM, tags=TAGS, errors=(*PEER_ERRORS, 422),
              summary="AGS: replace a line item")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               lineitem_id: int, *, body: LtiScoreLineItemIn) -> None:
        """Scope lineitem. A module's default line item stays the module's."""
        caller = self.caller(req, resp, (c.SCOPE_LINEITEM,))
        course = self.svc.context(caller, course_id)
        row = self.svc.update_lineitem(self.svc.lineitem(course.id, lineitem_id), body)
        _send(resp, LINEITEM, lineitem_out(self.plugin, row))

    @endpoint(permission=PUBLIC, own_credentials=access_token, status=204, tags=TAGS,
              errors=PEER_ERRORS, summary="AGS: delete a line item and its scores")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  lineitem_id: int) -> None:
        caller = self.caller(req, resp, (c.SCOPE_LINEITEM,))
        course = self.svc.context(caller, course_id)
        self.svc.delete_lineitem(self.svc.lineitem(course.id, lineitem_id))


class Scores(_Resource):
    @endpoint(permission=PUBLIC, own_credentials=access_token, body=LtiScoreIn, content_type=SCORE,
              status=204, tags=TAGS, errors=(*PEER_ERRORS, 409, 422),
              summary="AGS: post a learner's score")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                lineitem_id: int, *, body: LtiScoreIn) -> None:
        """Scope score. Every score is kept (history) and published as
        `lti.score_received.v1`; the module completes for the learner when activityProgress
        is Completed or gradingProgress FullyGraded. A timestamp older than the learner's
        last score is refused (409 lti_ags_score_stale)."""
        caller = self.caller(req, resp, (c.SCOPE_SCORE,))
        course = self.svc.context(caller, course_id)
        self.svc.post_score(caller, course, self.svc.lineitem(course.id, lineitem_id), body)


class Results(_Resource):
    @endpoint(permission=PUBLIC, own_credentials=access_token, query=LtiScoreResultQuery,
              response=list[LtiScoreResultOut], response_content_type=RESULTS, tags=TAGS,
              errors=PEER_ERRORS, summary="AGS: each learner's current result")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               lineitem_id: int, *, query: LtiScoreResultQuery) -> None:
        """Scope result.readonly: the last score of each learner (user_id filter)."""
        caller = self.caller(req, resp, (c.SCOPE_RESULT_READONLY,))
        course = self.svc.context(caller, course_id)
        row = self.svc.lineitem(course.id, lineitem_id)
        rows, more = self.svc.results(row, query.user_id, query.after, query.limit)
        url = self.plugin.urls.lineitem(course.id, row.id)
        if more and rows:
            _next(resp, f"{url}/results",
                  {**query.model_dump(exclude={"after"}), "after": rows[-1].user_id})
        _send(resp, RESULTS, [LtiScoreResultOut(
            id=f"{url}/results/{e.user_id}", scoreOf=url, userId=str(e.user_id),
            resultScore=e.score_given, resultMaximum=e.score_maximum,
            comment=e.comment or None) for e in rows])


class Memberships(_Resource):
    @endpoint(permission=PUBLIC, own_credentials=access_token, query=LtiScoreMembershipQuery,
              response=LtiScoreMemberships, response_content_type=MEMBERSHIPS, tags=TAGS,
              errors=PEER_ERRORS, summary="NRPS: the course's members")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: LtiScoreMembershipQuery) -> None:
        """Scope contextmembership.readonly: the owner (Instructor) and active learners
        (Learner), by user id; name and email as the tool's registration allows. `role`
        filters; `limit` and `Link: <...>; rel="next"` page."""
        caller = self.caller(req, resp, (c.SCOPE_NRPS,))
        course = self.svc.context(caller, course_id)
        members, more = self.svc.members(caller, course, query.role, query.after, query.limit)
        url = self.plugin.urls.memberships(course.id)
        if more and members:
            _next(resp, url, {**query.model_dump(exclude={"after"}),
                              "after": members[-1]["user_id"]})
        _send(resp, MEMBERSHIPS, LtiScoreMemberships(
            id=url, context=LtiScoreContext(id=str(course.id), title=course.title),
            members=[LtiScoreMember(**m) for m in members]))


class ScoreCollection(_Resource):
    @endpoint(permission="lti.scores.read", query=LtiScoreQuery, response=LtiScorePage,
              tags=TAGS, errors=(403, 404),
              summary="The scores tools posted for a course's learners")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: LtiScoreQuery) -> LtiScorePage:
        """The course's owner instructor or an admin; newest first, every score kept."""
        q = self.svc.scores(req.context.principal, query.course_id, query.module_id,
                            query.user_id)
        got = paginate(q, [LtiScoreEntry.id.desc()], query, score_out)
        return LtiScorePage(**got)

