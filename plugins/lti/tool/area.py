"""What this part of the LTI plugin adds (see plugins/lti/areas.py): learnplat as tool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from learnplat.plugin import ProblemCode, Route

from ..areas import Area
from ..pages import launch_problem
from ..urls import PREFIX, SCHOOL
from .cli import platforms
from .models import MODELS

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

PROBLEMS: dict[str, ProblemCode] = {
    "lti_no_platform": ProblemCode(
        404, "No platform registration with this id in the school (GET /lti/platforms "
             "lists them).", title="No such LTI platform"),
    "lti_platform_exists": ProblemCode(
        409, "A platform with this issuer and client_id is registered already: change that "
             "one (PATCH /lti/platforms/{id}) instead of adding another.",
        title="The LTI platform is registered already"),
    "lti_unknown_issuer": launch_problem(
        "No platform of the school has the issuer a launch names (or the id_token's iss is "
        "not the registration's): register the platform or fix its issuer."),
    "lti_unknown_client": launch_problem(
        "The client_id (or the id_token's aud/azp) is not one the school registered for "
        "the platform: fix client_id in the registration or in the platform."),
    "lti_client_id_required": launch_problem(
        "Several registrations share the platform's issuer and the login initiation names "
        "no client_id: make the platform send client_id."),
    "lti_platform_disabled": launch_problem(
        "The platform registration is disabled: enable it (PATCH /lti/platforms/{id}).",
        status=403),
    "lti_deployment_not_registered": launch_problem(
        "The launch's deployment id is not in the registration's deployment_ids: add it "
        "(PATCH /lti/platforms/{id})."),
    "lti_keys_unavailable": launch_problem(
        "The platform's keys could not be fetched from its jwks_url: check the URL in the "
        "registration and that learnplat may reach it.", status=502),
    "lti_bad_signature": launch_problem(
        "The id_token is not a JWT signed (RS256) by a key at the platform's jwks_url: it "
        "was altered, or the registration's jwks_url is wrong."),
    "lti_expired": launch_problem(
        "The id_token has expired (or is not valid yet), or the login began more than 10 "
        "minutes before the launch: start again; check the clocks if it persists."),
    "lti_replayed_nonce": launch_problem(
        "The id_token's nonce belongs to a finished launch: an id_token is accepted once."),
    "lti_state_mismatch": launch_problem(
        "The launch's state is unknown to the school, used already, or does not go with "
        "the id_token's nonce: start the launch again from the platform."),
    "lti_missing_claim": launch_problem(
        "The id_token lacks a claim LTI 1.3 requires (the detail names it): fix the "
        "platform's placement or privacy settings."),
    "lti_bad_version": launch_problem("The launch is not LTI 1.3.0."),
    "lti_unknown_message_type": launch_problem(
        "The launch's message type is neither LtiResourceLinkRequest nor "
        "LtiDeepLinkingRequest."),
    "lti_unknown_target": launch_problem(
        "The launch (or the picked item) names no published course or module of this "
        "school: place the course again with Deep Linking, or give target_link_uri = the "
        "launch URL + ?course=<id> (custom parameter course_id)."),
    "lti_no_landing_url": launch_problem(
        "The school has no page for launched users: set the registration's landing_url or "
        "the school setting oauth.redirect_url.", status=503),
    "lti_platform_error": launch_problem(
        "The platform answered the login with an OIDC error instead of an id_token."),
    "lti_deep_linking_forbidden": launch_problem(
        "Only a platform instructor (or administrator) may place learnplat content.",
        status=403),
    "lti_deep_link_ticket": launch_problem(
        "The content picker's ticket is unknown, used or expired (30 minutes): start Deep "
        "Linking again from the platform."),
}


def _routes(plugin: LtiPlugin) -> list[Route]:
    from . import resources as r

    return [
        Route("/lti/platforms", r.PlatformCollection(plugin)),
        Route("/lti/platforms/{platform_id:int}", r.PlatformResource(plugin)),
        Route(f"{PREFIX}/tool/login", r.ToolLogin(plugin), tenant_param=SCHOOL),
        Route(f"{PREFIX}/tool/launch", r.ToolLaunch(plugin), tenant_param=SCHOOL),
        Route(f"{PREFIX}/tool/deep-link", r.ToolDeepLink(plugin), tenant_param=SCHOOL),
    ]


AREA = Area(models=MODELS, problems=PROBLEMS, routes=_routes, commands=[platforms])
