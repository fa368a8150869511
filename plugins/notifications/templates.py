"""Texts of the notifications made from events: a template per kind, overridable per tenant
(tenant setting ``notifications.templates.<kind>.title`` / ``.body``).

Templates use ``string.Template`` ($name placeholders) rather than str.format: tenant admins
write them, and $-substitution cannot reach attributes of the values.
"""

from __future__ import annotations

from string import Template
from typing import Any

from learnplat.plugin import TenantInfo

DEFAULTS: dict[str, tuple[str, str]] = {
    "enrolled": ("You are enrolled in $course_title", "Welcome! You can start learning now."),
    "module_published": ("New in $course_title: $module_title",
                         "A new module is available in $course_title."),
    "quiz_published": ("New quiz in $course_title: $module_title",
                       "A new quiz is available in $course_title."),
    "quiz_graded": ("Your quiz in $course_title was graded", "Score: $score"),
    "assignment_graded": ("Your assignment in $course_title was graded", "Score: $score"),
    "milestone": ("Halfway through $course_title", "You have completed $percent% of the course."),
    "course_completed": ("You completed $course_title", "Congratulations!"),
    "certificate_issued": ("Your certificate for $course_title is ready",
                           "You can download it from the course page."),
    "course_approved": ("$course_title was approved", "Your course is now in the catalogue."),
    "course_rejected": ("$course_title was not approved", "Reason: $reason"),
    "course_rated": ("New rating on $course_title", "A learner gave it $stars stars."),
    "course_question": ("New question on $course_title", "$subject"),
    # Sent by the webhooks plugin to the school's admins (its own title and body).
    "webhook_disabled": ("A webhook endpoint was disabled", "$reason"),
    # Sent by the xapi plugin to the school's admins (its own title and body).
    "lrs_disabled": ("The learning record store was disabled", "$reason"),
    "lti_passback_disabled": ("Grades to an LMS stopped", "$reason"),
}
KINDS = (*DEFAULTS, "announcement")
# A kind's default channel when neither the user nor the school chose one: an endpoint that
# stopped receiving is worth an e-mail to the admins, not only a bell icon.
KIND_CHANNELS: dict[str, str] = {"webhook_disabled": "email", "lrs_disabled": "email",
                                 "lti_passback_disabled": "email"}


def render(tenant: TenantInfo, kind: str, values: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of a `kind` notification, from the tenant's template or the default."""
    title, body = DEFAULTS[kind]
    custom = tenant.setting(f"notifications.templates.{kind}", {}) or {}
    if isinstance(custom, dict):
        title = str(custom.get("title") or title)
        body = str(custom.get("body") or body)
    text = _Blank({k: "" if v is None else str(v) for k, v in values.items()})
    return (Template(title).safe_substitute(text)[:200],
            Template(body).safe_substitute(text)[:5000])


class _Blank(dict[str, str]):
    """A placeholder the event does not carry renders empty, not as "$name"."""

    def __missing__(self, key: str) -> str:
        return ""
