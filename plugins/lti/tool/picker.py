"""The content picker of a Deep Linking request (LTI Deep Linking 2.0, learnplat as tool):
a page listing the school's published courses and their modules; the instructor's choice
comes back as an LtiDeepLinkingResponse JWT signed with the school's key and posted by the
browser to the platform's deep_link_return_url."""

from __future__ import annotations

import datetime as dt
import html
import json
import secrets
from typing import TYPE_CHECKING, Any, NoReturn

from learnplat_courses.api import COURSES, CourseInfo

from learnplat.plugin import NotFound, utcnow

from .. import claims as c
from ..models import PlatformRegistration
from ..pages import refuse
from .launches import ROLE, Launch, status_of
from .models import LtiToolDeepLink

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

PICK_SECONDS = 1800  # how long an instructor may take to pick
MAX_COURSES = 200  # courses the page lists


class DeepLinkPicker:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    def _refuse(self, code: str, detail: str, fix: str, ip: str, **audit: Any) -> NoReturn:
        refuse(self.plugin.runtime, code, detail, fix, role=ROLE, ip=ip, audit=audit,
               status=status_of(self.plugin, code))

    def _courses(self) -> list[CourseInfo]:
        """The school's published courses, oldest first (at most MAX_COURSES)."""
        return self.plugin.runtime.service(COURSES).published_courses(0, MAX_COURSES)

    def open(self, launch: Launch, user_id: int | None) -> str:
        """A new ticket for the request (stored: another process may get the choice)."""
        settings = launch.claims[c.DL_SETTINGS]
        now = utcnow()
        ticket = secrets.token_urlsafe(32)
        LtiToolDeepLink.create(
            ticket=ticket, platform_id=launch.platform.id, deployment_id=launch.deployment_id,
            user_id=user_id, return_url=str(settings["deep_link_return_url"])[:2000],
            data=None if settings.get("data") is None else json.dumps(settings["data"]),
            accept_multiple=bool(settings.get("accept_multiple")), created_at=now,
            expires_at=now + dt.timedelta(seconds=PICK_SECONDS))
        return ticket

    def page_html(self, ticket: str) -> str:
        """The picker: one radio button per course and per module, posted with the ticket."""
        esc = html.escape
        courses = self.plugin.runtime.service(COURSES)
        items: list[str] = []
        for course in self._courses():
            items.append(f'<li><label><input type="radio" name="item" value="course:'
                         f'{course.id}" required> <strong>{esc(course.title)}</strong>'
                         "</label><ul>")
            for m in courses.list_modules(course.id):
                items.append(f'<li><label><input type="radio" name="item" value="module:'
                             f'{course.id}:{m.id}"> {esc(m.title)}</label></li>')
            items.append("</ul></li>")
        if not items:
            return ("<p>This school has no published course to place yet. Publish a course "
                    "in learnplat, then start again from the platform.</p>")
        action = esc(self.plugin.urls.tool_deep_link())
        return (f'<form method="post" action="{action}"><input type="hidden" name="ticket" '
                f'value="{esc(ticket)}"><p>Pick the course or module to place:</p><ul>'
                f'{"".join(items)}</ul><button type="submit">Place it</button></form>')

    def answer(self, ticket: str, item: str, ip: str) -> tuple[str, str]:
        """(return URL, the signed LtiDeepLinkingResponse) for the picked item."""
        row = LtiToolDeepLink.get_or_none(LtiToolDeepLink.ticket == ticket) if ticket else None
        fix = "start Deep Linking again from the platform"
        if row is None or row.used_at is not None or row.expires_at <= utcnow():
            why = ("unknown" if row is None else "used already" if row.used_at is not None
                   else "expired")
            self._refuse("lti_deep_link_ticket", f"the picker's ticket is {why}", fix, ip)
        burnt = (LtiToolDeepLink.update(used_at=utcnow())
                 .where((LtiToolDeepLink.id == row.id) & LtiToolDeepLink.used_at.is_null())
                 .execute())
        if not burnt:
            self._refuse("lti_deep_link_ticket", "the picker's ticket is used already", fix, ip)
        platform = PlatformRegistration.get_or_none(PlatformRegistration.id == row.platform_id)
        if platform is None or not platform.enabled:
            self._refuse("lti_platform_disabled", "the platform registration of this request "
                         "was removed or disabled", "enable the platform (PATCH "
                         "/lti/platforms/{id})", ip, platform_id=row.platform_id)
        content = self._item(item, ip, platform)
        claims: dict[str, Any] = {
            "iss": platform.client_id, "aud": platform.issuer,
            "nonce": secrets.token_urlsafe(16),
            c.DEPLOYMENT_ID: row.deployment_id, c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
            c.VERSION: c.LTI_VERSION, c.DL_CONTENT_ITEMS: [content],
        }
        if row.data is not None:
            claims[c.DL_DATA] = json.loads(row.data)
        return row.return_url, self.plugin.keys.sign(claims)

    def _item(self, item: str, ip: str, platform: PlatformRegistration) -> dict[str, Any]:
        """The ltiResourceLink content item of ``course:<id>`` / ``module:<cid>:<mid>``."""
        parts = item.split(":")
        ok = (len(parts) == 2 and parts[0] == "course") or (len(parts) == 3
                                                             and parts[0] == "module")
        if not ok or not all(p.isdigit() and len(p) <= 18 for p in parts[1:]):
            self._refuse("lti_unknown_target", f"the picked item {item[:60]!r} is not a "
                         "course or module", "pick a course or module on the page", ip,
                         platform_id=platform.id)
        courses = self.plugin.runtime.service(COURSES)
        course = courses.get_course(int(parts[1]))
        if course is None or course.status != "published":
            self._refuse("lti_unknown_target", f"course {parts[1]} is not a published course "
                         "of this school", "pick a published course", ip,
                         platform_id=platform.id)
        title = course.title
        url = f"{self.plugin.urls.tool_launch()}?course={course.id}"
        custom: dict[str, str] = {"course_id": str(course.id)}
        if len(parts) == 3:
            try:
                module = courses.get_module(course.id, int(parts[2]))
            except NotFound:
                self._refuse("lti_unknown_target", f"course {course.id} has no module "
                             f"{parts[2]}", "pick a module of the course", ip,
                             platform_id=platform.id)
            title = f"{course.title}: {module.title}"
            url += f"&module={module.id}"
            custom["module_id"] = str(module.id)
        return {"type": "ltiResourceLink", "title": title[:255], "url": url,
                "custom": custom, "lineItem": {"scoreMaximum": 100, "label": title[:255]}}
