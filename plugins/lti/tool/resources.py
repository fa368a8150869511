"""Routes of learnplat as tool. Admin routes (/lti/platforms, permission lti.manage) with
X-Tenant; peer-facing routes under /lti/schools/{school}/tool/... (the school named by the
path): the OIDC login initiation, the launch and the content picker's answer. Those are
PUBLIC and declared browser=True: a refused launch is a page naming the failed check for a
browser, problem+json otherwise, and is written to the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from learnplat.plugin import FORM, PUBLIC, PageQuery, endpoint, paginate

from ..models import PlatformRegistration
from ..pages import auto_post, page
from ..schemas import LtiToolUrls
from .launches import ToolLaunches
from .picker import DeepLinkPicker
from .platforms import PlatformRegistrations
from .schemas import (
    LtiToolDeepLinkIn,
    LtiToolLaunchIn,
    LtiToolLoginIn,
    LtiToolPlatformIn,
    LtiToolPlatformOut,
    LtiToolPlatformPage,
    LtiToolPlatformPatch,
)

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

PERM = "lti.manage"
TAGS = ("lti",)


class LtiToolPlatformQuery(PageQuery):
    enabled: bool | None = None


def tool_urls(plugin: LtiPlugin) -> LtiToolUrls:
    u = plugin.urls
    return LtiToolUrls(login_url=u.tool_login(), launch_url=u.tool_launch(),
                       deep_linking_url=u.tool_launch(), jwks_url=u.jwks())


def platform_out(plugin: LtiPlugin, row: PlatformRegistration,
                 urls: LtiToolUrls | None = None) -> LtiToolPlatformOut:
    return LtiToolPlatformOut(
        id=row.id, name=row.name, issuer=row.issuer, client_id=row.client_id,
        deployment_ids=list(row.deployment_ids), auth_login_url=row.auth_login_url,
        token_url=row.token_url, jwks_url=row.jwks_url, landing_url=row.landing_url,
        enabled=row.enabled, created_by=row.created_by, created_at=row.created_at,
        updated_at=row.updated_at, tool=urls or tool_urls(plugin))


def client_ip(req: falcon.Request) -> str:
    return req.context.client_addr or ""


class _Resource:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self.platforms = PlatformRegistrations(plugin)
        self.launches = ToolLaunches(plugin)
        self.picker = DeepLinkPicker(plugin)


class PlatformCollection(_Resource):
    @endpoint(permission=PERM, query=LtiToolPlatformQuery, response=LtiToolPlatformPage,
              tags=TAGS, errors=(503,),
              summary="The LMSs registered to launch the school's courses (learnplat as tool)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: LtiToolPlatformQuery) -> LtiToolPlatformPage:
        urls = tool_urls(self.plugin)
        page_ = paginate(self.platforms.list(query.enabled), [PlatformRegistration.id], query,
                         lambda row: platform_out(self.plugin, row, urls))
        return LtiToolPlatformPage(**page_)

    @endpoint(permission=PERM, body=LtiToolPlatformIn, response=LtiToolPlatformOut,
              status=201, tags=TAGS, errors=(409, 503),
              summary="Register an LMS that launches the school's courses")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiToolPlatformIn) -> LtiToolPlatformOut:
        """URLs must pass the outbound policy (422 `unsafe_url` naming the field); 409
        `lti_platform_exists` for a second registration of one (issuer, client_id). The
        answer's `tool` says what to enter in the platform."""
        row = self.platforms.create(body.model_dump(), req.context.principal.user_id)
        resp.location = f"/lti/platforms/{row.id}"
        return platform_out(self.plugin, row)


class PlatformResource(_Resource):
    @endpoint(permission=PERM, response=LtiToolPlatformOut, tags=TAGS, errors=(404, 503),
              summary="A platform registration and what to enter in the platform")
    def on_get(self, req: falcon.Request, resp: falcon.Response, platform_id: int
               ) -> LtiToolPlatformOut:
        return platform_out(self.plugin, self.platforms.get(platform_id))

    @endpoint(permission=PERM, body=LtiToolPlatformPatch, response=LtiToolPlatformOut,
              tags=TAGS, errors=(404, 409, 503),
              summary="Change a platform registration (deployments, URLs, enabled...)")
    def on_patch(self, req: falcon.Request, resp: falcon.Response, platform_id: int, *,
                 body: LtiToolPlatformPatch) -> LtiToolPlatformOut:
        row = self.platforms.update(platform_id, body.model_dump(exclude_unset=True))
        return platform_out(self.plugin, row)

    @endpoint(permission=PERM, status=204, tags=TAGS, errors=(404,),
              summary="Remove a platform registration and its account links")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, platform_id: int) -> None:
        """The learnplat accounts made by its launches stay (with their progress); their
        links to the platform's users go, so a new registration makes new accounts."""
        self.platforms.delete(platform_id)


class ToolLogin(_Resource):
    """OIDC third-party-initiated login: the platform sends the browser here (GET or a
    form POST); learnplat stores a state and nonce and redirects to the platform's
    authorization endpoint. No cookie is set: the stored state is the check (browsers drop
    third-party cookies inside the platform's iframe)."""

    @endpoint(permission=PUBLIC, query=LtiToolLoginIn, status=302, tags=TAGS,
              errors=(400, 503), browser=True,
              summary="LTI 1.3 OIDC login initiation (learnplat as tool)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: LtiToolLoginIn) -> None:
        self.launches.redirect(resp, self.launches.login(query.model_dump(), client_ip(req)))

    @endpoint(permission=PUBLIC, body=LtiToolLoginIn, content_type=FORM, status=302,
              tags=TAGS, errors=(400, 503), browser=True,
              summary="LTI 1.3 OIDC login initiation, posted as a form")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiToolLoginIn) -> None:
        self.launches.redirect(resp, self.launches.login(body.model_dump(), client_ip(req)))


class ToolLaunch(_Resource):
    @endpoint(permission=PUBLIC, body=LtiToolLaunchIn, content_type=FORM, status=302,
              also=(200,), tags=TAGS, errors=(400, 403, 503), browser=True,
              response_content_type="text/html",
              summary="LTI 1.3 launch into learnplat (the platform's form_post)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiToolLaunchIn) -> None:
        """Checks the state (single use, 10 minutes), the id_token (signature with the
        platform's JWKS, iss, aud/azp, exp, nonce never used), the deployment, version,
        message type and required claims. A resource link: the account linked to (platform,
        sub) (made on the first launch), enrolled when a learner, then a 302 to the landing
        URL with a one-time `code` (POST /auth/oauth/exchange), `course_id` and `module_id`.
        A Deep Linking request by an instructor: the content picker page (200)."""
        ip = client_ip(req)
        if body.error:
            self.launches.refuse(
                "lti_platform_error", f"the platform answered the login with the error "
                f"{body.error!r}: {body.error_description[:300]}",
                "sign in to the platform, then start the launch again; the error is the "
                "platform's (check learnplat's registration there)", ip)
        launch, landing = self.launches.launch(body.id_token, body.state, ip)
        if landing is not None:
            self.launches.redirect(resp, landing)
            return
        ticket = self.picker.open(launch, None)
        resp.status = falcon.HTTP_200
        page(resp, "Place learnplat content", self.picker.page_html(ticket))


class ToolDeepLink(_Resource):
    @endpoint(permission=PUBLIC, body=LtiToolDeepLinkIn, content_type=FORM, status=200,
              tags=TAGS, errors=(400, 503), browser=True, response_content_type="text/html",
              summary="The content picker's choice, posted on to the platform as a Deep "
                      "Linking response")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiToolDeepLinkIn) -> None:
        """Answers a page that posts the signed LtiDeepLinkingResponse (field `JWT`) to the
        platform's deep_link_return_url: an ltiResourceLink whose url is the launch URL with
        `?course=` (`&module=`) and a lineItem (scoreMaximum 100) for grades."""
        url, token = self.picker.answer(body.ticket, body.item, client_ip(req))
        auto_post(resp, url, {"JWT": token}, title="Placing the content…")

