"""The LTI Advantage services learnplat offers the tools of its courses: access tokens
(OAuth 2 client credentials with a signed JWT assertion), AGS 2.0 line items, scores and
results, NRPS 2.0 memberships, and the scores instructors read."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jwt
import peewee
from learnplat_courses.api import COURSES, CourseInfo
from learnplat_enrollment.api import ENROLLMENT
from learnplat_identity.api import IDENTITY

from learnplat.plugin import (
    UTC,
    Conflict,
    LearnplatError,
    NotFound,
    PermissionDenied,
    Principal,
    Unauthorized,
    utcnow,
)

from .. import claims as c
from ..models import ToolRegistration
from ..peers import PeerTokenError
from ..platform.models import LtiPlatformModuleLink
from .events import LtiScoreReceived
from .models import LtiScoreAssertion, LtiScoreEntry, LtiScoreLineItem, LtiScoreToken

if TYPE_CHECKING:
    from ..plugin import LtiPlugin
    from .schemas import LtiScoreIn, LtiScoreLineItemIn

TOKEN_SECONDS = 3600
AGS_SCOPES = (c.SCOPE_LINEITEM, c.SCOPE_LINEITEM_READONLY, c.SCOPE_RESULT_READONLY,
              c.SCOPE_SCORE)


class AgsInvalid(LearnplatError):
    """A score or line item a tool sent that the course cannot take (the code says why)."""

    status, code, title = 422, "lti_ags_unknown_user", "Invalid AGS request"


OAuthError = Literal["invalid_request", "invalid_client", "invalid_grant", "invalid_scope",
                     "unsupported_grant_type", "unauthorized_client"]


class TokenRefused(Exception):
    """A refused token request: the RFC 6749 `error`, learnplat's problem `code`, what to fix
    and the status (401 for invalid_client, 400 otherwise)."""

    def __init__(self, error: OAuthError, code: str, detail: str):
        super().__init__(detail)
        self.error, self.code, self.detail = error, code, detail
        self.status = 401 if error == "invalid_client" else 400


# A peer token check that failed -> (RFC 6749 error, problem code).
_CHECKS: dict[str, tuple[OAuthError, str]] = {
    "malformed": ("invalid_client", "lti_token_bad_assertion"),
    "keys_unavailable": ("invalid_client", "lti_token_keys_unavailable"),
    "unknown_key": ("invalid_client", "lti_token_bad_assertion"),
    "bad_signature": ("invalid_client", "lti_token_bad_assertion"),
    "wrong_issuer": ("invalid_client", "lti_token_bad_assertion"),
    "expired": ("invalid_grant", "lti_token_expired"),
    "not_yet_valid": ("invalid_grant", "lti_token_expired"),
    "wrong_audience": ("invalid_grant", "lti_token_wrong_audience"),
    "missing_claim": ("invalid_grant", "lti_token_claims"),
}


@dataclass(frozen=True)
class Caller:
    """The tool an access token was issued to, and its scopes."""

    tool: ToolRegistration
    scopes: tuple[str, ...]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Advantage:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    @property
    def courses(self) -> Any:
        return self.plugin.runtime.service(COURSES)

    # -- the token endpoint -------------------------------------------------------------------

    def issue_token(self, grant_type: str, assertion_type: str, assertion: str, scope: str
                    ) -> tuple[str, list[str]]:
        """A new access token and the scopes granted, or TokenRefused."""
        if grant_type != "client_credentials":
            raise TokenRefused("unsupported_grant_type", "lti_token_grant_type",
                               "grant_type must be client_credentials")
        if assertion_type != c.CLIENT_ASSERTION_TYPE:
            raise TokenRefused("invalid_request", "lti_token_assertion_type",
                               f"client_assertion_type must be {c.CLIENT_ASSERTION_TYPE}")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenRefused("invalid_client", "lti_token_bad_assertion",
                               "client_assertion is not a JWT") from None
        client_id = unverified.get("iss")
        tool = None
        if isinstance(client_id, str) and client_id:
            tool = ToolRegistration.get_or_none(ToolRegistration.client_id == client_id)
        if tool is None or not tool.enabled:
            raise TokenRefused("invalid_client", "lti_token_unknown_client",
                               "the assertion's iss is no enabled tool's client_id in the school")
        if unverified.get("sub") != client_id:
            raise TokenRefused("invalid_client", "lti_token_bad_assertion",
                               "the assertion's sub must be the client_id (its iss)")
        urls = self.plugin.urls
        try:
            claims = self.plugin.peers.verify(
                assertion, issuer=client_id, audience=[urls.platform_token(), urls.issuer()],
                jwks_url=tool.jwks_url, jwk=tool.public_jwk, require=("exp", "iat", "jti"))
        except PeerTokenError as exc:
            error, code = _CHECKS.get(exc.check, ("invalid_client", "lti_token_bad_assertion"))
            raise TokenRefused(error, code, str(exc)) from None
        wanted = [s for s in scope.split() if s]
        granted = [s for s in dict.fromkeys(wanted) if s in tool.scopes]
        if not granted:
            raise TokenRefused("invalid_scope", "lti_token_scope",
                               "none of the scopes asked for is granted to the tool "
                               f"(it may have: {' '.join(tool.scopes) or 'none'})")
        now = utcnow()
        # The jti is stored until the assertion expires: a replay on any process is refused.
        LtiScoreAssertion.delete().where(LtiScoreAssertion.expires_at < now).execute()
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), UTC)
        inserted = (LtiScoreAssertion.insert(tool_id=tool.id, jti=str(claims["jti"])[:255],
                                             expires_at=expires)
                    .on_conflict_ignore().as_rowcount().execute())
        if not inserted:
            raise TokenRefused("invalid_grant", "lti_token_replayed",
                               "this client_assertion (its jti) was used already: sign a new "
                               "one for every token request")
        token = secrets.token_urlsafe(32)
        LtiScoreToken.delete().where(LtiScoreToken.expires_at < now).execute()
        LtiScoreToken.create(token_hash=_hash(token), tool_id=tool.id, scopes=granted,
                             expires_at=now + dt.timedelta(seconds=TOKEN_SECONDS))
        return token, granted

    def caller(self, authorization: str | None, scopes: tuple[str, ...]) -> Caller:
        """The tool whose access token the Authorization header carries, when the token
        holds one of `scopes` (none: any): Unauthorized (no/unknown/expired token) or
        PermissionDenied (insufficient scope) otherwise."""
        kind, _, token = (authorization or "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Unauthorized("an LTI access token is needed (Authorization: Bearer ...), "
                               "from the school's token endpoint", code="lti_ags_token")
        row = LtiScoreToken.get_or_none(LtiScoreToken.token_hash == _hash(token.strip()))
        if row is None or _utc(row.expires_at) <= utcnow():
            raise Unauthorized("the access token is unknown to this school or has expired: "
                               "ask the token endpoint for a new one", code="lti_ags_token")
        tool = ToolRegistration.get_or_none(ToolRegistration.id == row.tool_id)
        if tool is None or not tool.enabled:
            raise Unauthorized("the tool of this access token is disabled or removed",
                               code="lti_ags_token")
        found = Caller(tool, tuple(row.scopes))
        self.require_scope(found, scopes)
        return found

    @staticmethod
    def require_scope(caller: Caller, scopes: tuple[str, ...]) -> None:
        """PermissionDenied unless the caller's token holds one of `scopes` (none: any)."""
        if scopes and not any(s in caller.scopes for s in scopes):
            raise PermissionDenied(f"the access token lacks the scope {scopes[0]}",
                                   code="lti_ags_scope")

    def context(self, caller: Caller, course_id: int) -> CourseInfo:
        """The course, when an lti module of it launches the caller's tool; NotFound else."""
        course = self.courses.get_course(course_id)
        used = LtiPlatformModuleLink.select().where(
            (LtiPlatformModuleLink.course_id == course_id)
            & (LtiPlatformModuleLink.tool_id == caller.tool.id)).exists()
        if course is None or not used:
            raise NotFound("no course of the school uses this tool with this id",
                           code="lti_ags_no_context")
        return course

    # -- line items ---------------------------------------------------------------------------

    def default_lineitem(self, tool: ToolRegistration, course_id: int, module_id: int
                         ) -> LtiScoreLineItem:
        """The default line item of an lti module (made on its first launch)."""
        row = LtiScoreLineItem.get_or_none((LtiScoreLineItem.course_id == course_id)
                                           & (LtiScoreLineItem.module_id == module_id)
                                           & LtiScoreLineItem.is_default)
        if row is not None:
            return row
        link = LtiPlatformModuleLink.get_or_none(LtiPlatformModuleLink.module_id == module_id)
        title = ""
        for m in self.courses.list_modules(course_id):
            if m.id == module_id:
                title = m.title
        return LtiScoreLineItem.create(
            course_id=course_id, module_id=module_id, tool_id=tool.id,
            label=(title or f"Module {module_id}")[:255], is_default=True,
            score_maximum=(link.max_score if link is not None and link.max_score else 100.0))

    def lineitems(self, course_id: int, resource_link_id: str | None, resource_id: str | None,
                  tag: str | None, after: int, limit: int) -> tuple[list[LtiScoreLineItem], bool]:
        q = LtiScoreLineItem.select().where((LtiScoreLineItem.course_id == course_id)
                                            & (LtiScoreLineItem.id > after))
        if resource_link_id is not None:
            module = int(resource_link_id) if resource_link_id.isdigit() else -1
            q = q.where(LtiScoreLineItem.module_id == module)
        if resource_id is not None:
            q = q.where(LtiScoreLineItem.resource_id == resource_id)
        if tag is not None:
            q = q.where(LtiScoreLineItem.tag == tag)
        rows = list(q.order_by(LtiScoreLineItem.id).limit(limit + 1))
        return rows[:limit], len(rows) > limit

    def lineitem(self, course_id: int, lineitem_id: int) -> LtiScoreLineItem:
        row = LtiScoreLineItem.get_or_none((LtiScoreLineItem.id == lineitem_id)
                                           & (LtiScoreLineItem.course_id == course_id))
        if row is None:
            raise NotFound("no line item with this id in the course", code="lti_ags_no_lineitem")
        return row

    def _fields(self, course_id: int, body: LtiScoreLineItemIn) -> dict[str, Any]:
        module_id = None
        if body.resourceLinkId:
            link = (LtiPlatformModuleLink.get_or_none(
                (LtiPlatformModuleLink.module_id == int(body.resourceLinkId))
                & (LtiPlatformModuleLink.course_id == course_id))
                if body.resourceLinkId.isdigit() else None)
            if link is None:
                raise AgsInvalid("resourceLinkId is not an lti module of the course",
                                       code="lti_ags_resource_link")
            module_id = link.module_id
        return {"module_id": module_id, "label": body.label, "score_maximum": body.scoreMaximum,
                "resource_id": body.resourceId, "tag": body.tag,
                "start_at": _utc(body.startDateTime) if body.startDateTime else None,
                "end_at": _utc(body.endDateTime) if body.endDateTime else None}

    def create_lineitem(self, caller: Caller, course_id: int, body: LtiScoreLineItemIn
                        ) -> LtiScoreLineItem:
        return LtiScoreLineItem.create(course_id=course_id, tool_id=caller.tool.id,
                                       **self._fields(course_id, body))

    def update_lineitem(self, row: LtiScoreLineItem, body: LtiScoreLineItemIn
                        ) -> LtiScoreLineItem:
        fields = self._fields(row.course_id, body)
        if row.is_default:
            fields["module_id"] = row.module_id  # the module's own column stays its own
        LtiScoreLineItem.update(**fields).where(LtiScoreLineItem.id == row.id).execute()
        return LtiScoreLineItem.get_by_id(row.id)

    def delete_lineitem(self, row: LtiScoreLineItem) -> None:
        LtiScoreEntry.delete().where(LtiScoreEntry.lineitem == row.id).execute()
        LtiScoreLineItem.delete().where(LtiScoreLineItem.id == row.id).execute()

    # -- scores and results -------------------------------------------------------------------

    def post_score(self, caller: Caller, course: CourseInfo, row: LtiScoreLineItem,
                   body: LtiScoreIn) -> LtiScoreEntry:
        user_id = int(body.userId) if body.userId.isdigit() else 0
        members = set(self.plugin.runtime.service(ENROLLMENT).active_user_ids(
            course.id, after_id=user_id - 1, limit=1)) if user_id else set()
        if user_id not in members:
            raise AgsInvalid("userId is not an active learner of the course (it is the "
                                   "sub of the learner's launch)", code="lti_ags_unknown_user")
        if body.scoreGiven is not None and body.scoreMaximum is None:
            raise AgsInvalid("scoreMaximum is required with scoreGiven",
                                   code="lti_ags_score_maximum")
        stamp = _utc(body.timestamp)
        last = (LtiScoreEntry.select(peewee.fn.MAX(LtiScoreEntry.timestamp))
                .where((LtiScoreEntry.lineitem == row.id) & (LtiScoreEntry.user_id == user_id))
                .scalar())
        if last is not None and stamp < _utc(last):
            raise Conflict("the score's timestamp is older than the last score stored for "
                           "this learner: send the newest state with a newer timestamp",
                           code="lti_ags_score_stale")
        entry = LtiScoreEntry.create(
            lineitem=row.id, course_id=course.id, module_id=row.module_id, user_id=user_id,
            tool_id=caller.tool.id, score_given=body.scoreGiven, score_maximum=body.scoreMaximum,
            activity_progress=body.activityProgress, grading_progress=body.gradingProgress,
            comment=body.comment, timestamp=stamp)
        self.plugin.runtime.events.record(LtiScoreReceived(
            course_id=course.id, module_id=row.module_id, user_id=user_id, lineitem_id=row.id,
            score_given=body.scoreGiven, score_maximum=body.scoreMaximum,
            activity_progress=body.activityProgress, grading_progress=body.gradingProgress))
        return entry

    def results(self, row: LtiScoreLineItem, user_id: str | None, after: int, limit: int
                ) -> tuple[list[LtiScoreEntry], bool]:
        """The last score (by timestamp, then id) of each learner, by user id."""
        latest = (LtiScoreEntry.select(peewee.fn.MAX(LtiScoreEntry.id))
                  .where(LtiScoreEntry.lineitem == row.id).group_by(LtiScoreEntry.user_id))
        q = LtiScoreEntry.select().where(LtiScoreEntry.id.in_(latest)
                                         & (LtiScoreEntry.user_id > after))
        if user_id is not None:
            q = q.where(LtiScoreEntry.user_id == (int(user_id) if user_id.isdigit() else -1))
        rows = list(q.order_by(LtiScoreEntry.user_id).limit(limit + 1))
        return rows[:limit], len(rows) > limit

    # -- NRPS ---------------------------------------------------------------------------------

    def members(self, caller: Caller, course: CourseInfo, role: str | None, after: int,
                limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The course's owner (Instructor) and active learners (Learner) above user id
        `after`, by id; name and email as the registration's privacy settings allow."""
        want = None
        if role is not None:
            want = role.rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        ids: list[int] = []
        if want in (None, "learner"):
            ids = self.plugin.runtime.service(ENROLLMENT).active_user_ids(
                course.id, after_id=after, limit=limit + 1)
        if want in (None, "instructor") and course.owner_id > after:
            ids = sorted({*ids, course.owner_id})
        ids = ids[: limit + 1]
        users = self.plugin.runtime.service(IDENTITY).users(ids)
        out: list[dict[str, Any]] = []
        for uid in ids[:limit]:
            user = users.get(uid)
            if user is None:
                continue
            member: dict[str, Any] = {
                "user_id": str(uid), "status": "Active",
                "roles": [c.INSTRUCTOR] if uid == course.owner_id else [c.LEARNER]}
            if caller.tool.send_name:
                member["name"] = user.name
            if caller.tool.send_email:
                member["email"] = user.email
            out.append(member)
        return out, len(ids) > limit

    # -- instructors --------------------------------------------------------------------------

    def scores(self, principal: Principal, course_id: int, module_id: int | None,
               user_id: int | None) -> peewee.ModelSelect[LtiScoreEntry]:
        """The scores of a course its owner or an admin may read (NotFound/PermissionDenied
        as CoursesAPI.owned_course says)."""
        course = self.courses.owned_course(course_id, principal, permission="lti.scores.read")
        q = LtiScoreEntry.select().where(LtiScoreEntry.course_id == course.id)
        if module_id is not None:
            q = q.where(LtiScoreEntry.module_id == module_id)
        if user_id is not None:
            q = q.where(LtiScoreEntry.user_id == user_id)
        return q

    def averages(self, course_id: int) -> dict[str, Any] | None:
        """The average of each learner's last score (as a fraction of its maximum) per lti
        module of the course: the `lti` section of its analytics."""
        latest = (LtiScoreEntry.select(peewee.fn.MAX(LtiScoreEntry.id))
                  .where((LtiScoreEntry.course_id == course_id)
                         & LtiScoreEntry.module_id.is_null(False)
                         & LtiScoreEntry.score_given.is_null(False))
                  .group_by(LtiScoreEntry.lineitem, LtiScoreEntry.user_id))
        per: dict[int, list[float]] = {}
        for e in LtiScoreEntry.select().where(LtiScoreEntry.id.in_(latest)):
            if e.score_maximum and e.score_given is not None and e.module_id is not None:
                per.setdefault(e.module_id, []).append(e.score_given / e.score_maximum)
        if not per:
            return None
        return {"lti": {"modules": [
            {"module_id": m, "learners": len(v), "average_score": round(sum(v) / len(v), 4)}
            for m, v in sorted(per.items())]}}
