"""Tool registrations (learnplat as platform): the external tools the school's courses may
launch, and which tool each ``lti`` module launches. No Falcon here: the resources and the
CLI call it."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import jwt
import peewee

from learnplat.plugin import NotFound, UnsafeURL, ValidationFailed, db, utcnow

from ..models import ToolRegistration
from .models import LtiPlatformLaunch, LtiPlatformModuleLink

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

# learnplat fetches jwks_url itself; the browser goes to the others. All pass the outbound
# policy (private addresses refused, https unless the policy allows http).
URL_FIELDS = ("login_url", "launch_url", "deep_linking_url", "jwks_url")
FIELDS = ("name", "description", "deployment_ids", *URL_FIELDS, "redirect_uris", "public_jwk",
          "scopes", "send_name", "send_email", "custom", "enabled")


def new_client_id() -> str:
    """Unguessable: a tool's client_id names it in every message (and the token endpoint)."""
    return "lp-" + secrets.token_urlsafe(24)


class ToolRegistrations:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    def _url(self, name: str, value: str) -> str:
        try:
            out = str(self.plugin.runtime.outbound.check_url(value))
        except UnsafeURL as exc:
            raise ValidationFailed.field(name, str(exc), "unsafe_url") from None
        if len(out) > 2000:
            raise ValidationFailed.field(name, "longer than 2000 characters once normalised",
                                         "unsafe_url")
        return out

    def _check(self, data: dict[str, Any]) -> None:
        urls = self.plugin.urls
        for name in URL_FIELDS:
            if data.get(name):
                # learnplat fetches the tool's keys; the others only a browser visits.
                data[name] = (self._url(name, data[name]) if name == "jwks_url"
                              else urls.browser_url(name, data[name]))
        if data.get("redirect_uris"):
            data["redirect_uris"] = list(dict.fromkeys(
                urls.browser_url("redirect_uris", u) for u in data["redirect_uris"]))
        if data.get("public_jwk") is not None:
            try:
                key = jwt.PyJWK.from_dict(data["public_jwk"])
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
                raise ValidationFailed.field("public_jwk", f"not a usable JWK: {exc}",
                                             "unusable_key") from None
            if key.key_type != "RSA":
                raise ValidationFailed.field("public_jwk", "LTI 1.3 requires an RSA key",
                                             "unusable_key")

    def create(self, data: dict[str, Any], created_by: int | None = None) -> ToolRegistration:
        data = {k: v for k, v in data.items() if k in FIELDS}
        self._check(data)
        if not data.get("deployment_ids"):
            data["deployment_ids"] = [secrets.token_hex(8)]
        if not data.get("redirect_uris"):
            data["redirect_uris"] = list(dict.fromkeys(
                u for u in (data["launch_url"], data.get("deep_linking_url")) if u))
        now = utcnow()
        return ToolRegistration.create(**data, client_id=new_client_id(), created_by=created_by,
                                       created_at=now, updated_at=now)

    def get(self, tool_id: int, lock: bool = False) -> ToolRegistration:
        q = ToolRegistration.select().where(ToolRegistration.id == tool_id)
        if lock and db.is_postgres():
            q = q.for_update()
        row = q.first()
        if row is None:
            raise NotFound("no such LTI tool", code="lti_no_tool")
        return row

    def by_client_id(self, client_id: str) -> ToolRegistration | None:
        if not client_id:
            return None
        return ToolRegistration.get_or_none(ToolRegistration.client_id == client_id)

    def list(self, enabled: bool | None = None) -> peewee.ModelSelect[ToolRegistration]:
        q = ToolRegistration.select()
        if enabled is not None:
            q = q.where(ToolRegistration.enabled == enabled)
        return q

    def update(self, tool_id: int, changes: dict[str, Any]) -> ToolRegistration:
        row = self.get(tool_id, lock=True)
        changes = {k: v for k, v in changes.items() if k in FIELDS}
        self._check(changes)
        jwks_url = changes.get("jwks_url", row.jwks_url)
        public_jwk = changes.get("public_jwk", row.public_jwk)
        if not jwks_url and not public_jwk:
            raise ValidationFailed.field("jwks_url", "the tool needs jwks_url or public_jwk",
                                         "required")
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        row.save()
        return row

    def delete(self, tool_id: int) -> None:
        """The registration, its modules' links (the modules stay, launching nothing) and
        launches in flight."""
        row = self.get(tool_id, lock=True)
        LtiPlatformModuleLink.delete().where(LtiPlatformModuleLink.tool_id == row.id).execute()
        LtiPlatformLaunch.delete().where(LtiPlatformLaunch.tool_id == row.id).execute()
        row.delete_instance()

    # -- lti modules ---------------------------------------------------------------------------

    def link(self, course_id: int, module_id: int) -> LtiPlatformModuleLink | None:
        return LtiPlatformModuleLink.get_or_none(
            (LtiPlatformModuleLink.course_id == course_id)
            & (LtiPlatformModuleLink.module_id == module_id))

    def set_link(self, course_id: int, module_id: int, tool_id: int, target_link_uri: str,
                 custom: dict[str, str], max_score: float | None) -> LtiPlatformModuleLink:
        """Point an lti module at a tool (the caller checked owned_course)."""
        tool = self.get(tool_id)
        if target_link_uri:
            target_link_uri = self._url("target_link_uri", target_link_uri)
        row = self.link(course_id, module_id) or LtiPlatformModuleLink(
            course_id=course_id, module_id=module_id)
        row.tool_id, row.target_link_uri = tool.id, target_link_uri
        row.custom, row.max_score, row.updated_at = dict(custom), max_score, utcnow()
        row.save()
        return row
