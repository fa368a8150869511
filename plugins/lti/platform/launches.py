"""Launches of external tools (learnplat as platform, LTI 1.3 core and Deep Linking 2.0):
a signed-in user asks for a launch (a single-use, 5-minute login_hint stored in the
database), the browser goes to the tool's OIDC login initiation, the tool sends it to the
authorization endpoint, which checks the request and answers the signed id_token
(form_post); a tool's Deep Linking response becomes lti modules of the course."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

import jwt
import peewee
from learnplat_courses.api import COURSES, ModuleInfo
from learnplat_enrollment.api import ENROLLMENT
from learnplat_identity.api import IDENTITY
from learnplat_progress.api import PROGRESS

from learnplat.plugin import (
    NotFound,
    PermissionDenied,
    Principal,
    ValidationFailed,
    current_tenant,
    db,
    utcnow,
)

from .. import claims as c
from ..advantage.claims import launch_claims
from ..models import ToolRegistration
from ..pages import refuse
from ..peers import PeerTokenError
from .models import LtiPlatformLaunch, LtiPlatformModuleLink, LtiPlatformNonce
from .tools import ToolRegistrations

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

LAUNCH_SECONDS = 300  # a login_hint is valid this long, once
PRODUCT = "learnplat"
VERSION = "1.0"
_VAR = re.compile(r"^\$[A-Za-z][A-Za-z0-9_.]*$")


class Launches:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self.tools = ToolRegistrations(plugin)

    # -- starting a launch (a signed-in user) --------------------------------------------------

    def start(self, principal: Principal, module_id: int | None, course_id: int | None,
              tool_id: int | None, deep_linking: bool) -> tuple[str, dt.datetime]:
        """The tool's login initiation URL for the caller's launch, and when it expires."""
        rt = self.plugin.runtime
        courses = rt.service(COURSES)
        if deep_linking:
            assert course_id is not None
            course = courses.owned_course(course_id, principal)
            tool = self.tools.get(tool_id) if tool_id else self._only_tool()
            target = tool.deep_linking_url or tool.launch_url
            module: ModuleInfo | None = None
        else:
            assert module_id is not None
            link = LtiPlatformModuleLink.get_or_none(LtiPlatformModuleLink.module_id == module_id)
            if link is None:
                raise NotFound("no lti module with this id", code="lti_module_not_linked")
            course = courses.visible_course(link.course_id, principal)
            module = courses.get_module(course.id, module_id)
            if not self._teaches(principal, course.owner_id):
                rt.service(ENROLLMENT).require_active(course.id, principal)
                why = rt.service(PROGRESS).lock_reason(course.id, module.id,
                                                       int(principal.user_id))
                if why is not None:
                    raise PermissionDenied(f"the module is locked ({why})",
                                           code="lti_module_locked")
            tool = self.tools.get(link.tool_id)
            target = link.target_link_uri or tool.launch_url
        if not tool.enabled:
            raise PermissionDenied("the tool is disabled", code="lti_tool_disabled")
        now = utcnow()
        # Launches a day past their expiry are of no use (a Deep Linking request's row is
        # answered within its data's lifetime): pruned here, by the index on expires_at.
        LtiPlatformLaunch.delete().where(
            LtiPlatformLaunch.expires_at < now - dt.timedelta(days=1)).execute()
        row = LtiPlatformLaunch.create(
            launch_id=secrets.token_urlsafe(32), message_hint=secrets.token_urlsafe(32),
            user_id=int(principal.user_id), tool_id=tool.id, course_id=course.id,
            module_id=module.id if module else None, deep_linking=deep_linking,
            target_link_uri=target, created_at=now,
            expires_at=now + dt.timedelta(seconds=LAUNCH_SECONDS))
        if deep_linking:
            # The value the tool echoes in its response: signed, naming course and launch.
            row.dl_data = self.plugin.keys.sign(
                {"lp": "deep_link", "course": course.id, "launch": row.launch_id},
                lifetime=3600)
            row.save()
        query = {"iss": self.plugin.urls.issuer(), "login_hint": row.launch_id,
                 "target_link_uri": target, "lti_message_hint": row.message_hint,
                 "client_id": tool.client_id, "lti_deployment_id": tool.deployment_ids[0]}
        sep = "&" if "?" in tool.login_url else "?"
        return f"{tool.login_url}{sep}{urlencode(query)}", row.expires_at

    def _only_tool(self) -> ToolRegistration:
        enabled = list(self.tools.list(True).limit(2))
        if len(enabled) != 1:
            raise ValidationFailed.field(
                "tool_id", "name the tool: the school has "
                f"{'no' if not enabled else 'several'} enabled tools", "needed_here")
        return enabled[0]

    @staticmethod
    def _teaches(principal: Principal, owner_id: int) -> bool:
        return principal.role == "admin" or int(principal.user_id) == owner_id

    # -- the authorization endpoint (the browser, from the tool) -------------------------------

    def _refuse(self, code: str, detail: str, fix: str, ip: str, **audit: Any) -> NoReturn:
        refuse(self.plugin.runtime, code, detail, fix, role="platform", ip=ip, audit=audit)

    def authorize(self, p: dict[str, str], ip: str) -> tuple[str, dict[str, str]]:
        """(redirect_uri, {id_token, state}) for a valid authentication request; each
        failed check a refusal naming it."""
        def need(field: str, want: str, code: str) -> None:
            got = p.get(field, "")
            ok = want in got.split() if field == "scope" else got == want
            if not ok:
                self._refuse(code, f"{field} is {got!r}; LTI 1.3 requires {want!r}",
                             f"the tool must send {field}={want} (a fault of the tool or its "
                             "LTI library)", ip)
        need("scope", "openid", "lti_auth_scope")
        need("response_type", "id_token", "lti_auth_response_type")
        need("response_mode", "form_post", "lti_auth_response_mode")
        need("prompt", "none", "lti_auth_prompt")
        tool = self.tools.by_client_id(p.get("client_id", ""))
        if tool is None:
            self._refuse("lti_auth_unknown_client",
                         f"no tool of the school has client_id {p.get('client_id', '')!r}",
                         "enter the client_id GET /lti/tools shows in the tool's settings", ip)
        if not tool.enabled:
            self._refuse("lti_auth_tool_disabled", f"the tool {tool.name!r} is disabled",
                         f"enable it: PATCH /lti/tools/{tool.id} {{\"enabled\": true}}", ip,
                         tool_id=tool.id)
        redirect_uri = p.get("redirect_uri", "")
        if redirect_uri not in tool.redirect_uris:
            self._refuse("lti_auth_redirect_uri",
                         f"redirect_uri {redirect_uri!r} is not one of the tool's redirect_uris",
                         f"add {redirect_uri} to the tool's redirect_uris: PATCH /lti/tools/"
                         f"{tool.id}", ip, tool_id=tool.id)
        if not p.get("nonce"):
            self._refuse("lti_auth_nonce", "the request has no nonce",
                         "the tool must send a nonce (a fault of the tool)", ip, tool_id=tool.id)
        launch = self._consume(tool, p.get("login_hint", ""), p.get("lti_message_hint", ""), ip)
        token = self.plugin.keys.sign(self.id_token(tool, launch, p["nonce"]))
        return redirect_uri, {"id_token": token, "state": p.get("state", "")}

    def _consume(self, tool: ToolRegistration, hint: str, message_hint: str, ip: str
                 ) -> LtiPlatformLaunch:
        row = LtiPlatformLaunch.get_or_none(LtiPlatformLaunch.launch_id == hint) if hint else None
        if row is None or row.tool_id != tool.id:
            self._refuse("lti_auth_login_hint", "the login_hint names no launch of this tool",
                         "start the launch again from learnplat (POST /lti/launches)", ip,
                         tool_id=tool.id)
        if not secrets.compare_digest(row.message_hint, message_hint):
            self._refuse("lti_auth_message_hint",
                         "the lti_message_hint does not go with the login_hint",
                         "the tool must echo lti_message_hint unchanged", ip, tool_id=tool.id)
        if row.used_at is not None:
            self._refuse("lti_auth_launch_used", "this launch was completed already: a "
                         "login_hint is accepted once",
                         "start the launch again from learnplat (POST /lti/launches)", ip,
                         tool_id=tool.id, launch_user=row.user_id)
        now = utcnow()
        if row.expires_at <= now:
            self._refuse("lti_auth_launch_expired", "the launch expired (5 minutes)",
                         "start the launch again from learnplat (POST /lti/launches)", ip,
                         tool_id=tool.id, launch_user=row.user_id)
        taken = LtiPlatformLaunch.update(used_at=now).where(
            (LtiPlatformLaunch.id == row.id) & LtiPlatformLaunch.used_at.is_null()).execute()
        if taken != 1:  # another request consumed it meanwhile
            self._refuse("lti_auth_launch_used", "this launch was completed already",
                         "start the launch again from learnplat (POST /lti/launches)", ip,
                         tool_id=tool.id)
        row.used_at = now
        return row

    def id_token(self, tool: ToolRegistration, launch: LtiPlatformLaunch, nonce: str
                 ) -> dict[str, Any]:
        rt = self.plugin.runtime
        tenant = current_tenant()
        user = rt.service(IDENTITY).user(launch.user_id)
        course = rt.service(COURSES).get_course(launch.course_id)
        if user is None or course is None:
            raise NotFound("the launch's user or course is gone", code="lti_module_not_linked")
        owner = user.role == "admin" or user.id == course.owner_id
        issuer = self.plugin.urls.issuer()
        module = None
        link = None
        if launch.module_id is not None:
            module = rt.service(COURSES).get_module(course.id, launch.module_id)
            link = LtiPlatformModuleLink.get_or_none(
                LtiPlatformModuleLink.module_id == launch.module_id)
        out: dict[str, Any] = {
            "iss": issuer, "aud": tool.client_id, "azp": tool.client_id, "sub": str(user.id),
            "nonce": nonce, c.VERSION: c.LTI_VERSION,
            c.DEPLOYMENT_ID: tool.deployment_ids[0], c.TARGET_LINK_URI: launch.target_link_uri,
            c.ROLES: c.roles_for("admin" if user.role == "admin" else "student",
                                 in_course_as_instructor=owner),
            c.CONTEXT: {"id": str(course.id), "label": course.title[:60], "title": course.title,
                        "type": [c.CONTEXT_COURSE_OFFERING]},
            c.TOOL_PLATFORM: {"guid": issuer, "name": tenant.name,
                              "product_family_code": PRODUCT, "version": VERSION},
            c.LAUNCH_PRESENTATION: {"document_target": "iframe",
                                    "return_url": f"{self.plugin.urls.base()}/courses/{course.id}"},
        }
        if tool.send_name:
            given, _, family = user.name.partition(" ")
            out.update(name=user.name, given_name=given, family_name=family)
        if tool.send_email:
            out["email"] = user.email
        variables = {
            "$User.id": str(user.id), "$Context.id": str(course.id),
            "$Context.title": course.title, "$CourseSection.sourcedId": str(course.id)}
        if tool.send_name:
            variables["$Person.name.full"] = user.name
        if tool.send_email:  # the username is the e-mail address: private as it is
            variables.update({"$Person.email.primary": user.email, "$User.username": user.email})
        if module is not None:
            variables.update({"$ResourceLink.id": str(module.id),
                              "$ResourceLink.title": module.title})
        custom = {**tool.custom, **(link.custom if link else {})}
        if custom:
            # Unknown (or withheld) variables stay as they are, as LTI 1.3 §5.4.1 says.
            out[c.CUSTOM] = {k: variables.get(v, v) if _VAR.match(v) else v
                             for k, v in custom.items()}
        if launch.deep_linking:
            out[c.MESSAGE_TYPE] = c.DEEP_LINKING_REQUEST
            out[c.DL_SETTINGS] = {
                "deep_link_return_url": self.plugin.urls.deep_link_return(),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True, "data": launch.dl_data}
        else:
            assert module is not None
            out[c.MESSAGE_TYPE] = c.RESOURCE_LINK_REQUEST
            out[c.RESOURCE_LINK] = {"id": str(module.id), "title": module.title}
        out.update(launch_claims(self.plugin, tool, course.id, launch.module_id))
        return out

    # -- the Deep Linking response (the browser, from the tool) --------------------------------

    def deep_link_return(self, token: str, ip: str) -> tuple[int, list[ModuleInfo]]:
        """The modules made from the tool's content items (course id, modules)."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            unverified = None
        if not isinstance(unverified, dict):
            self._refuse("lti_dl_malformed", "the JWT field is missing or not a JWT",
                         "the tool must post its response as the form field JWT", ip)
        tool = self.tools.by_client_id(str(unverified.get("iss", "")))
        if tool is None:
            self._refuse("lti_dl_unknown_client",
                         f"no tool of the school has client_id {unverified.get('iss')!r} "
                         "(the response's iss)",
                         "the tool must sign with iss = the client_id GET /lti/tools shows", ip)
        try:
            got = self.plugin.peers.verify(token, issuer=tool.client_id,
                                           audience=self.plugin.urls.issuer(),
                                           jwks_url=tool.jwks_url, jwk=tool.public_jwk)
        except PeerTokenError as exc:
            code = {"bad_signature": "lti_dl_bad_signature", "unknown_key": "lti_dl_bad_signature",
                    "keys_unavailable": "lti_dl_keys_unavailable", "expired": "lti_dl_expired",
                    "not_yet_valid": "lti_dl_expired"}.get(exc.check, "lti_dl_claims")
            self._refuse(code, f"the Deep Linking response failed the {exc.check} check: {exc}",
                         f"check the tool's keys (jwks_url / public_jwk: PATCH /lti/tools/"
                         f"{tool.id}) and its clock", ip, tool_id=tool.id, check=exc.check)
        if got.get(c.MESSAGE_TYPE) != c.DEEP_LINKING_RESPONSE:
            self._refuse("lti_dl_message_type",
                         f"message_type is {got.get(c.MESSAGE_TYPE)!r}, not LtiDeepLinkingResponse",
                         "a fault of the tool", ip, tool_id=tool.id)
        if got.get(c.DEPLOYMENT_ID) not in tool.deployment_ids:
            self._refuse("lti_dl_deployment", f"deployment_id {got.get(c.DEPLOYMENT_ID)!r} is "
                         "not one of the tool's", f"add it to deployment_ids: PATCH /lti/tools/"
                         f"{tool.id}", ip, tool_id=tool.id)
        launch = self._pending(tool, str(got.get(c.DL_DATA) or ""), ip)
        nonce = str(got.get("nonce") or "")
        if not nonce:
            self._refuse("lti_dl_replayed", "the response has no nonce", "a fault of the tool",
                         ip, tool_id=tool.id)
        # A nonce is kept a day: a response is also tied to its pending request, which
        # takes one response only, so an older replay is refused by that.
        LtiPlatformNonce.delete().where(
            LtiPlatformNonce.created_at < utcnow() - dt.timedelta(days=1)).execute()
        try:
            with db.database.atomic():  # a savepoint: a replay is a refusal, not a 500
                LtiPlatformNonce.create(tool_id=tool.id, nonce=nonce[:255])
        except peewee.IntegrityError:  # the nonce was seen
            replayed = True
        else:
            replayed = False
        if replayed or launch.returned_at is not None:
            self._refuse("lti_dl_replayed", "this Deep Linking response was accepted already",
                         "start Deep Linking again from learnplat", ip, tool_id=tool.id)
        launch.returned_at = utcnow()
        launch.save()
        return launch.course_id, self._add(tool, launch, got.get(c.DL_CONTENT_ITEMS) or [], ip)

    def _pending(self, tool: ToolRegistration, data: str, ip: str) -> LtiPlatformLaunch:
        def bad(why: str) -> NoReturn:
            self._refuse("lti_dl_data", f"the response's data {why}",
                         "start Deep Linking again from learnplat; the tool must echo data "
                         "unchanged", ip, tool_id=tool.id)
        try:
            named = jwt.decode(data, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            bad("is not the value learnplat sent")
        row = LtiPlatformLaunch.get_or_none(
            LtiPlatformLaunch.launch_id == str(named.get("launch", "")))
        if row is None or not row.deep_linking or row.tool_id != tool.id or not \
                secrets.compare_digest(row.dl_data, data):
            bad("does not match a Deep Linking request of this tool")
        if row.created_at + dt.timedelta(hours=1) <= utcnow():
            bad("belongs to a request over an hour old")
        return row

    def _add(self, tool: ToolRegistration, launch: LtiPlatformLaunch, items: Any, ip: str
             ) -> list[ModuleInfo]:
        rt = self.plugin.runtime
        course = rt.service(COURSES).get_course(launch.course_id)
        user = rt.service(IDENTITY).user(launch.user_id)
        if course is None or user is None or not (
                user.role == "admin" or user.id == course.owner_id):
            self._refuse("lti_dl_data", "the course is gone or no longer the requester's",
                         "start Deep Linking again from learnplat", ip, tool_id=tool.id)
        added: list[ModuleInfo] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
                continue
            url = str(item.get("url") or "")
            if url:
                url = self.tools._url("url", url)
            raw = item.get("custom")
            custom = {str(k)[:100]: str(v)[:1000] for k, v in list(raw.items())[:50]
                      } if isinstance(raw, dict) else {}
            line = item.get("lineItem")
            score = line.get("scoreMaximum") if isinstance(line, dict) else None
            max_score = float(score) if isinstance(score, int | float) and score > 0 else None
            title = str(item.get("title") or tool.name)[:200] or tool.name
            module = rt.service(COURSES).add_module(course.id, title, "lti",
                                                    description=str(item.get("text") or ""))
            LtiPlatformModuleLink.create(course_id=course.id, module_id=module.id,
                                         tool_id=tool.id, target_link_uri=url, custom=custom,
                                         max_score=max_score)
            added.append(module)
        rt.service(IDENTITY).audit("lti.deep_link_added", actor_id=launch.user_id, ip=ip,
                                   detail={"tool_id": tool.id, "course_id": course.id,
                                           "module_ids": [m.id for m in added]})
        return added
