"""What this part of the LTI plugin adds (see plugins/lti/areas.py): learnplat as
platform (tool registrations, lti modules, launches, Deep Linking)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from learnplat.plugin import ProblemCode, Route

from ..areas import Area
from ..pages import launch_problem
from ..urls import PREFIX, SCHOOL
from .cli import tools
from .models import MODELS

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

_AGAIN = " Start the launch again from learnplat (POST /lti/launches)."

PROBLEMS: dict[str, ProblemCode] = {
    "lti_no_tool": ProblemCode(
        404, "No tool registration with this id in the school (GET /lti/tools lists them).",
        title="No such LTI tool"),
    "lti_module_not_linked": ProblemCode(
        404, "The module launches no LTI tool: link it with PUT "
             "/courses/{course_id}/modules/{module_id}/lti.", title="Not an LTI module"),
    "lti_module_locked": ProblemCode(
        403, "The module is not open to the learner yet (not released, or its prerequisite "
             "is not complete): complete the prerequisite or wait for its release.",
        title="The module is locked"),
    "lti_tool_disabled": ProblemCode(
        403, "The module's tool is disabled: an admin enables it (PATCH /lti/tools/{id}).",
        title="The LTI tool is disabled"),
    "lti_auth_scope": launch_problem("The authentication request's scope lacks openid."),
    "lti_auth_response_type": launch_problem(
        "The authentication request's response_type is not id_token."),
    "lti_auth_response_mode": launch_problem(
        "The authentication request's response_mode is not form_post."),
    "lti_auth_prompt": launch_problem("The authentication request's prompt is not none."),
    "lti_auth_unknown_client": launch_problem(
        "No tool of the school has the request's client_id: enter the client_id GET "
        "/lti/tools shows in the tool."),
    "lti_auth_tool_disabled": launch_problem(
        "The tool is disabled: enable it (PATCH /lti/tools/{id}).", status=400),
    "lti_auth_redirect_uri": launch_problem(
        "The redirect_uri is not one of the tool's redirect_uris: add it (PATCH "
        "/lti/tools/{id})."),
    "lti_auth_nonce": launch_problem("The authentication request has no nonce."),
    "lti_auth_login_hint": launch_problem(
        "The login_hint names no launch of this tool." + _AGAIN),
    "lti_auth_message_hint": launch_problem(
        "The lti_message_hint does not go with the login_hint: the tool must echo it."),
    "lti_auth_launch_used": launch_problem(
        "The launch was completed already (a login_hint is used once)." + _AGAIN),
    "lti_auth_launch_expired": launch_problem(
        "The launch is over 5 minutes old." + _AGAIN),
    "lti_dl_malformed": launch_problem(
        "The Deep Linking response has no JWT field, or it is not a JWT."),
    "lti_dl_unknown_client": launch_problem(
        "The Deep Linking response's iss is no tool's client_id in the school."),
    "lti_dl_bad_signature": launch_problem(
        "The Deep Linking response is not signed by the tool's key (jwks_url or public_jwk "
        "of the registration): it was altered, or the registration's keys are wrong."),
    "lti_dl_keys_unavailable": launch_problem(
        "The tool's keys could not be read from its jwks_url: fix the URL (PATCH "
        "/lti/tools/{id}).", status=502),
    "lti_dl_expired": launch_problem(
        "The Deep Linking response has expired or is not valid yet: check the tool's clock."),
    "lti_dl_claims": launch_problem(
        "The Deep Linking response's aud is not the school's issuer, or a required claim is "
        "missing (the detail names it)."),
    "lti_dl_message_type": launch_problem(
        "The message is not an LtiDeepLinkingResponse."),
    "lti_dl_deployment": launch_problem(
        "The response's deployment_id is not one of the tool's: add it (PATCH "
        "/lti/tools/{id})."),
    "lti_dl_data": launch_problem(
        "The response's data does not match a pending Deep Linking request of this tool "
        "(or the course is no longer the requester's): start Deep Linking again."),
    "lti_dl_replayed": launch_problem(
        "The Deep Linking response (its nonce) was accepted already: a response is "
        "accepted once."),
}


def _routes(plugin: LtiPlugin) -> list[Route]:
    from . import resources as r

    return [
        Route("/lti/tools", r.ToolCollection(plugin)),
        Route("/lti/tools/{tool_id:int}", r.ToolResource(plugin)),
        Route("/courses/{course_id:int}/modules/{module_id:int}/lti", r.ModuleTool(plugin)),
        Route("/lti/launches", r.LaunchCollection(plugin)),
        Route(f"{PREFIX}/platform/auth", r.Authorize(plugin), tenant_param=SCHOOL),
        Route(f"{PREFIX}/platform/deep-links", r.DeepLinkReturn(plugin), tenant_param=SCHOOL),
    ]


AREA = Area(models=MODELS, problems=PROBLEMS, routes=_routes, commands=[tools])
