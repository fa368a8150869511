"""What this part of the LTI plugin adds (see plugins/lti/areas.py): the LTI Advantage
services learnplat offers tools (token endpoint, AGS 2.0, NRPS 2.0) and the scores they post."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat.plugin import Permission, ProblemCode, Route

from ..areas import Area
from ..urls import PREFIX, SCHOOL
from .cli import scores
from .events import EVENTS
from .models import MODELS

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

_TOKEN = " Tools read `error`; `code` names learnplat's check."

PROBLEMS: dict[str, ProblemCode] = {
    "lti_token_grant_type": ProblemCode(
        400, "The token request's grant_type is not client_credentials." + _TOKEN,
        title="Unsupported grant type"),
    "lti_token_assertion_type": ProblemCode(
        400, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:"
             "jwt-bearer." + _TOKEN, title="Wrong client assertion type"),
    "lti_token_bad_assertion": ProblemCode(
        401, "The client assertion is not a JWT, its iss/sub is not the client_id, or it is "
             "not signed by the tool's key (jwks_url or public_jwk of its registration: fix "
             "them with PATCH /lti/tools/{id})." + _TOKEN, title="Invalid client assertion"),
    "lti_token_keys_unavailable": ProblemCode(
        401, "The tool's keys could not be read from its jwks_url: fix the URL (PATCH "
             "/lti/tools/{id}) or give public_jwk." + _TOKEN,
        title="The tool's keys are unavailable"),
    "lti_token_unknown_client": ProblemCode(
        401, "The assertion's iss is no enabled tool's client_id in this school (GET "
             "/lti/tools; the school is the one in the token URL)." + _TOKEN,
        title="Unknown LTI client"),
    "lti_token_expired": ProblemCode(
        400, "The client assertion has expired or is not valid yet: sign a fresh one and "
             "check the tool's clock." + _TOKEN, title="Expired client assertion"),
    "lti_token_wrong_audience": ProblemCode(
        400, "The client assertion's aud is not this token URL (nor the school's issuer): "
             "use the token_url GET /lti/tools/{id} shows." + _TOKEN,
        title="Wrong audience"),
    "lti_token_claims": ProblemCode(
        400, "The client assertion lacks exp, iat or jti (the detail names it)." + _TOKEN,
        title="Missing claim"),
    "lti_token_replayed": ProblemCode(
        400, "The client assertion (its jti) was used already: sign a new one for every "
             "token request." + _TOKEN, title="Replayed client assertion"),
    "lti_token_scope": ProblemCode(
        400, "None of the scopes asked for is granted to the tool: an admin adds them to "
             "the registration (PATCH /lti/tools/{id}, `scopes`)." + _TOKEN,
        title="Scope not granted"),
    "lti_ags_token": ProblemCode(
        401, "An LTI access token of this school is needed (Authorization: Bearer), from "
             "its token endpoint; it lasts an hour.", title="LTI access token needed"),
    "lti_ags_scope": ProblemCode(
        403, "The access token lacks the scope this service needs: ask the token endpoint "
             "for it (the registration must allow it).", title="Insufficient scope"),
    "lti_ags_no_context": ProblemCode(
        404, "No course of the school with this id launches the tool (an lti module of the "
             "course must use it).", title="Unknown LTI context"),
    "lti_ags_no_lineitem": ProblemCode(
        404, "No line item with this id in the course (GET .../lineitems lists them).",
        title="No such line item"),
    "lti_ags_resource_link": ProblemCode(
        422, "resourceLinkId must be the id of an lti module of the course (the launch's "
             "resource_link.id).", title="Unknown resource link"),
    "lti_ags_unknown_user": ProblemCode(
        422, "userId must be the `sub` of a launch of an active learner of the course.",
        title="Unknown learner"),
    "lti_ags_score_maximum": ProblemCode(
        422, "A score with scoreGiven needs scoreMaximum.", title="scoreMaximum missing"),
    "lti_ags_score_stale": ProblemCode(
        409, "The score's timestamp is older than the last score stored for the learner "
             "and line item (AGS 2.0): send the current state with a newer timestamp.",
        title="Stale score"),
}


def _routes(plugin: LtiPlugin) -> list[Route]:
    from . import resources as r

    ctx = f"{PREFIX}/platform/contexts/{{course_id:int}}"
    item = f"{ctx}/lineitems/{{lineitem_id:int}}"
    return [
        Route(f"{PREFIX}/platform/token", r.Token(plugin), tenant_param=SCHOOL),
        Route(f"{ctx}/lineitems", r.LineItems(plugin), tenant_param=SCHOOL),
        Route(item, r.LineItem(plugin), tenant_param=SCHOOL),
        Route(f"{item}/scores", r.Scores(plugin), tenant_param=SCHOOL),
        Route(f"{item}/results", r.Results(plugin), tenant_param=SCHOOL),
        Route(f"{ctx}/memberships", r.Memberships(plugin), tenant_param=SCHOOL),
        Route("/lti/scores", r.ScoreCollection(plugin)),
    ]


def _analytics(plugin: LtiPlugin, course_id: int) -> dict[str, Any] | None:
    from .services import Advantage

    return Advantage(plugin).averages(course_id)


AREA = Area(
    models=MODELS,
    permissions=[Permission("lti.scores.read", "Read the scores LTI tools posted for a "
                                               "course's learners",
                            {"instructor": "own", "admin": "any"})],
    problems=PROBLEMS, events=list(EVENTS), routes=_routes, commands=[scores],
    analytics=_analytics)
