"""Routes of learnplat as platform. Admin routes (/lti/tools, permission lti.manage), the
lti modules of a course, launches (any signed-in user who may open the module) with
X-Tenant; the peer-facing authorization endpoint and Deep Linking return under
/lti/schools/{school}/platform/... (PUBLIC, browser=True: a refusal is a page naming the
failed check for a browser, problem+json otherwise, and is written to the audit log)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import falcon
from learnplat_courses.api import COURSES

from learnplat.plugin import AUTHENTICATED, FORM, PUBLIC, PageQuery, endpoint, paginate

from ..models import ToolRegistration
from ..pages import auto_post, page
from ..schemas import LtiPlatformUrls
from .launches import Launches
from .schemas import (
    LtiPlatformAuthIn,
    LtiPlatformDeepLinkIn,
    LtiPlatformLaunchIn,
    LtiPlatformLaunchOut,
    LtiPlatformModuleIn,
    LtiPlatformModuleOut,
    LtiPlatformToolIn,
    LtiPlatformToolOut,
    LtiPlatformToolPage,
    LtiPlatformToolPatch,
)
from .tools import ToolRegistrations

if TYPE_CHECKING:
    from ..plugin import LtiPlugin
    from .models import LtiPlatformModuleLink

PERM = "lti.manage"
TAGS = ("lti",)


class LtiPlatformToolQuery(PageQuery):
    enabled: bool | None = None


def platform_urls(plugin: LtiPlugin) -> LtiPlatformUrls:
    u = plugin.urls
    return LtiPlatformUrls(issuer=u.issuer(), jwks_url=u.jwks(),
                           authorization_url=u.platform_auth(), token_url=u.platform_token(),
                           deep_link_return_url=u.deep_link_return())


def tool_out(plugin: LtiPlugin, row: ToolRegistration, urls: LtiPlatformUrls | None = None
             ) -> LtiPlatformToolOut:
    return LtiPlatformToolOut(
        id=row.id, name=row.name, description=row.description, client_id=row.client_id,
        deployment_ids=list(row.deployment_ids), login_url=row.login_url,
        launch_url=row.launch_url, redirect_uris=list(row.redirect_uris),
        deep_linking_url=row.deep_linking_url, jwks_url=row.jwks_url,
        public_jwk=row.public_jwk, scopes=list(row.scopes), send_name=row.send_name,
        send_email=row.send_email, custom=dict(row.custom), enabled=row.enabled,
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
        platform=urls or platform_urls(plugin))


def module_out(link: LtiPlatformModuleLink, tool: ToolRegistration, secrets: bool
               ) -> LtiPlatformModuleOut:
    return LtiPlatformModuleOut(
        course_id=link.course_id, module_id=link.module_id, tool_id=tool.id,
        tool_name=tool.name, target_link_uri=link.target_link_uri or tool.launch_url,
        custom=dict(link.custom) if secrets else None, max_score=link.max_score)


def client_ip(req: falcon.Request) -> str:
    return req.context.client_addr or ""


class _Resource:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self.tools = ToolRegistrations(plugin)
        self.launches = Launches(plugin)


class ToolCollection(_Resource):
    @endpoint(permission=PERM, query=LtiPlatformToolQuery, response=LtiPlatformToolPage,
              tags=TAGS, errors=(503,),
              summary="The external tools the school's courses may launch (learnplat as "
                      "platform)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: LtiPlatformToolQuery) -> LtiPlatformToolPage:
        urls = platform_urls(self.plugin)
        got = paginate(self.tools.list(query.enabled), [ToolRegistration.id], query,
                       lambda row: tool_out(self.plugin, row, urls))
        return LtiPlatformToolPage(**got)

    @endpoint(permission=PERM, body=LtiPlatformToolIn, response=LtiPlatformToolOut,
              status=201, tags=TAGS, errors=(503,), summary="Register an external LTI 1.3 tool")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiPlatformToolIn) -> LtiPlatformToolOut:
        """learnplat makes the client_id (and a deployment id unless given). URLs must pass
        the outbound policy (422 `unsafe_url` naming the field). The answer's `platform` says
        what to enter in the tool."""
        row = self.tools.create(body.model_dump(), req.context.principal.user_id)
        resp.location = f"/lti/tools/{row.id}"
        return tool_out(self.plugin, row)


class ToolResource(_Resource):
    @endpoint(permission=PERM, response=LtiPlatformToolOut, tags=TAGS, errors=(404, 503),
              summary="A tool registration and what to enter in the tool")
    def on_get(self, req: falcon.Request, resp: falcon.Response, tool_id: int
               ) -> LtiPlatformToolOut:
        return tool_out(self.plugin, self.tools.get(tool_id))

    @endpoint(permission=PERM, body=LtiPlatformToolPatch, response=LtiPlatformToolOut,
              tags=TAGS, errors=(404, 503),
              summary="Change a tool registration (URLs, keys, privacy, enabled...)")
    def on_patch(self, req: falcon.Request, resp: falcon.Response, tool_id: int, *,
                 body: LtiPlatformToolPatch) -> LtiPlatformToolOut:
        row = self.tools.update(tool_id, body.model_dump(exclude_unset=True))
        return tool_out(self.plugin, row)

    @endpoint(permission=PERM, status=204, tags=TAGS, errors=(404,),
              summary="Remove a tool registration")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, tool_id: int) -> None:
        """Its lti modules stay but launch nothing until linked to another tool."""
        self.tools.delete(tool_id)


class ModuleTool(_Resource):
    @endpoint(permission=AUTHENTICATED, response=LtiPlatformModuleOut, tags=TAGS,
              errors=(404,), summary="The tool an lti module launches")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> LtiPlatformModuleOut:
        """For whoever sees the course; `custom` only for its owner and admins."""
        principal = req.context.principal
        course = self.plugin.runtime.service(COURSES).visible_course(course_id, principal)
        link = self.tools.link(course.id, module_id)
        if link is None:
            from learnplat.plugin import NotFound

            raise NotFound("this module launches no LTI tool", code="lti_module_not_linked")
        owner = principal.role == "admin" or int(principal.user_id) == course.owner_id
        return module_out(link, self.tools.get(link.tool_id), owner)

    @endpoint(permission="course.update", body=LtiPlatformModuleIn,
              response=LtiPlatformModuleOut, tags=TAGS, errors=(403, 404),
              summary="Make a module launch an external tool (kind lti)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, *, body: LtiPlatformModuleIn) -> LtiPlatformModuleOut:
        """The course's owner instructor or an admin."""
        courses = self.plugin.runtime.service(COURSES)
        course = courses.owned_course(course_id, req.context.principal)
        courses.get_module(course.id, module_id)
        link = self.tools.set_link(course.id, module_id, body.tool_id, body.target_link_uri,
                                   body.custom, body.max_score)
        courses.set_module_kind(course.id, module_id, "lti")
        return module_out(link, self.tools.get(link.tool_id), True)


class LaunchCollection(_Resource):
    @endpoint(permission=AUTHENTICATED, body=LtiPlatformLaunchIn,
              response=LtiPlatformLaunchOut, status=201, tags=TAGS, errors=(403, 404, 503),
              summary="Launch an lti module (or ask a tool for content: Deep Linking)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiPlatformLaunchIn) -> LtiPlatformLaunchOut:
        """An enrolled learner whose module is open, the course's owner or an admin; Deep
        Linking: the course's owner or an admin. Open `launch_url` in the browser within 5
        minutes (single use)."""
        url, expires = self.launches.start(req.context.principal, body.module_id,
                                           body.course_id, body.tool_id, body.deep_linking)
        return LtiPlatformLaunchOut(launch_url=url, expires_at=expires)


class Authorize(_Resource):
    """The OIDC authorization endpoint: the tool's login sends the browser here; the answer
    is a page posting the signed id_token to the tool's redirect_uri (form_post)."""

    @endpoint(permission=PUBLIC, query=LtiPlatformAuthIn, status=200, tags=TAGS,
              errors=(400, 404, 503), browser=True, response_content_type="text/html",
              summary="LTI 1.3 OIDC authorization endpoint (learnplat as platform)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: LtiPlatformAuthIn) -> None:
        url, fields = self.launches.authorize(query.model_dump(), client_ip(req))
        auto_post(resp, url, fields, title="Opening the tool…")

    @endpoint(permission=PUBLIC, body=LtiPlatformAuthIn, content_type=FORM, status=200,
              tags=TAGS, errors=(400, 404, 503), browser=True,
              response_content_type="text/html",
              summary="LTI 1.3 OIDC authorization endpoint, posted as a form")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiPlatformAuthIn) -> None:
        url, fields = self.launches.authorize(body.model_dump(), client_ip(req))
        auto_post(resp, url, fields, title="Opening the tool…")


class DeepLinkReturn(_Resource):
    @endpoint(permission=PUBLIC, body=LtiPlatformDeepLinkIn, content_type=FORM, status=200,
              tags=TAGS, errors=(400, 422, 502, 503), browser=True,
              response_content_type="text/html",
              summary="A tool's Deep Linking response: its items become lti modules")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: LtiPlatformDeepLinkIn) -> None:
        """Checks the JWT (the tool's keys, iss = its client_id, aud = the school's issuer,
        exp, nonce never used), message type, deployment and `data` (the pending request's);
        each ltiResourceLink becomes an lti module of the course. Answers a page listing them."""
        course_id, added = self.launches.deep_link_return(body.JWT, client_ip(req))
        items = "".join(f"<li>{html.escape(m.title)} (module {m.id})</li>" for m in added)
        page(resp, "Added to the course",
             f"<p>{len(added)} module(s) added to course {course_id}:</p><ul>{items}</ul>")
