"""Helpers of the tests of learnplat as platform: a school with a published course, its
admin, owner instructor and an enrolled student; a pylti1p3 tool registered in it; and the
browser legs of a launch driven with `requests` (learnplat's launch_url -> the tool's
login -> learnplat's authorization endpoint -> the form posted to the tool)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import requests
from learnplat_identity.testing import UserFactory
from ltitool import Platform, TestTool

from learnplat.tenancy import TenantInfo

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/problem+json, application/json"}


class School:
    def __init__(self, runtime: Any, client: Any, tenant: TenantInfo, plugin: Any):
        self.runtime, self.client, self.tenant, self.plugin = runtime, client, tenant, plugin
        self.users = UserFactory(runtime, tenant)
        self.admin = self.users.make("admin")
        self.teacher = self.users.make("instructor")
        self.student = self.users.make("student")
        self.a = client.as_(self.admin.token, tenant=tenant)
        self.t = client.as_(self.teacher.token, tenant=tenant)
        self.s = client.as_(self.student.token, tenant=tenant)
        r = self.t.post("/courses", json={"title": "Chemistry 101"})
        assert r.status_code == 201, r.text
        self.course_id = r.json["id"]
        self.module_ids = []
        for title in ("Titration lab", "Week 2"):
            r = self.t.post(f"/courses/{self.course_id}/modules", json={"title": title})
            assert r.status_code == 201, r.text
            self.module_ids.append(r.json["id"])
        assert self.t.post(f"/courses/{self.course_id}/submit").status_code == 200
        assert self.a.post(f"/courses/{self.course_id}/approve").status_code == 200
        assert self.s.post(f"/courses/{self.course_id}/enroll").status_code == 201

    def register(self, tool: TestTool, **fields: Any) -> dict[str, Any]:
        """Register `tool` (POST /lti/tools) and give it learnplat's half."""
        r = self.a.post("/lti/tools", json=tool.registration_body(**fields))
        assert r.status_code == 201, r.text
        out = dict(r.json)
        p = out["platform"]
        tool.platform = Platform(issuer=p["issuer"], client_id=out["client_id"],
                                 deployment_ids=out["deployment_ids"],
                                 auth_url=p["authorization_url"], token_url=p["token_url"],
                                 jwks_url=p["jwks_url"])
        return out

    def link(self, tool_id: int, module: int = 0, **fields: Any) -> dict[str, Any]:
        r = self.t.put(f"/courses/{self.course_id}/modules/{self.module_ids[module]}/lti",
                       json={"tool_id": tool_id, **fields})
        assert r.status_code == 200, r.text
        return dict(r.json)

    def launch_url(self, who: Any, **body: Any) -> str:
        r = who.post("/lti/launches", json=body)
        assert r.status_code == 201, r.text
        return str(r.json["launch_url"])

    def audit(self, action: str) -> list[dict[str, Any]]:
        r = self.a.get("/audit", params={"action": action, "limit": 100})
        assert r.status_code == 200, r.text
        return list(r.json["items"])


@dataclass
class Leg:
    """One browser leg's answer: learnplat's page (form), or the tool's answer."""

    response: requests.Response
    action: str = ""
    fields: dict[str, str] | None = None


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an auto-posting page (pages.auto_post)."""
    action = re.search(r'<form[^>]*action="([^"]*)"', page)
    assert action, page[:1000]
    fields = {html.unescape(k): html.unescape(v) for k, v in re.findall(
        r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    return html.unescape(action.group(1)), fields


def to_auth(browser: requests.Session, launch_url: str, headers: dict[str, str] | None = None
            ) -> Leg:
    """Open learnplat's launch_url: the tool's login redirects to learnplat's authorization
    endpoint, which answers the form_post page (or a refusal)."""
    r = browser.get(launch_url, headers=headers or HTML, timeout=10)
    if r.status_code == 200 and "<form" in r.text:
        action, fields = form_of(r.text)
        return Leg(r, action, fields)
    return Leg(r)


def launch(browser: requests.Session, launch_url: str) -> requests.Response:
    """The whole launch: the id_token form posted to the tool (which validates it)."""
    leg = to_auth(browser, launch_url)
    assert leg.fields is not None, (leg.response.status_code, leg.response.text[:1000])
    return browser.post(leg.action, data=leg.fields, timeout=10)
