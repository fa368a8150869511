"""xAPI 1.0.3 statements of learning events: the vocabulary (ADL verbs and activity types, and
registered IRIs where ADL has none), stable ids, and the statement of each event kind. Pure
functions of plain data: the handlers (services.py) look up the learner, the course and the
enrollment and pass them in. docs/xapi.md lists every mapping."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, Literal

ActorMode = Literal["account", "mbox_sha1sum"]

# Every statement id and registration is a UUID 5 in this namespace (itself the UUID 5 of the
# URL of the documentation page): the same school, event and kind give the same id on any
# worker and at any retry.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://learnplat.org/docs/xapi")

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
ADL_ACTIVITIES = "http://adlnet.gov/expapi/activities/"


@dataclass(frozen=True)
class Verb:
    id: str
    display: str

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "display": {"en-US": self.display}}


VERBS = {
    "registered": Verb(ADL_VERBS + "registered", "registered"),
    "completed": Verb(ADL_VERBS + "completed", "completed"),
    "progressed": Verb(ADL_VERBS + "progressed", "progressed"),
    "attempted": Verb(ADL_VERBS + "attempted", "attempted"),
    "passed": Verb(ADL_VERBS + "passed", "passed"),
    "failed": Verb(ADL_VERBS + "failed", "failed"),
    "scored": Verb(ADL_VERBS + "scored", "scored"),
    # ADL has no verb for handing work in or for being awarded something: the xAPI registry's
    # Activity Streams "submit" and Tin Can "earned".
    "submitted": Verb("http://activitystrea.ms/schema/1.0/submit", "submitted"),
    "earned": Verb("http://id.tincanapi.com/verb/earned", "earned"),
}

ACTIVITY_TYPES = {
    "course": ADL_ACTIVITIES + "course",
    "module": ADL_ACTIVITIES + "module",
    "assessment": ADL_ACTIVITIES + "assessment",
    "video": "https://w3id.org/xapi/video/activity-type/video",
    "assignment": "http://id.tincanapi.com/activitytype/school-assignment",
    "badge": "http://activitystrea.ms/schema/1.0/badge",
}

# cmi5's progress (an integer percent) on a result; the xAPI Video Profile's length (seconds)
# in a context.
PROGRESS_EXTENSION = "https://w3id.org/xapi/cmi5/result/extensions/progress"
VIDEO_LENGTH_EXTENSION = "https://w3id.org/xapi/video/extensions/length"
PLATFORM = "learnplat"


def statement_id(school: str, event_id: int, kind: str) -> str:
    """The id of the statement of `kind` made of event `event_id` of `school`: the same at every
    retry and repeat of the handler, so the LRS (and our queue's key) never holds two."""
    return str(uuid.uuid5(NAMESPACE, f"{school}:event:{event_id}:{kind}"))


def registration(school: str, enrollment_id: int) -> str:
    """One registration (context.registration) per enrollment: every statement about a
    learner's time in a course carries it."""
    return str(uuid.uuid5(NAMESPACE, f"{school}:enrollment:{enrollment_id}"))


def actor(mode: ActorMode, home_page: str, user_id: int, email: str) -> dict[str, Any]:
    """The learner as the school chose to identify them: an account on the school's home page
    (name: the user id, which never changes) or the SHA-1 of their mailto IRI (no address in
    the LRS, yet matched with other systems that know it)."""
    if mode == "account":
        return {"objectType": "Agent", "account": {"homePage": home_page,
                                                   "name": str(user_id)}}
    digest = hashlib.sha1(f"mailto:{email.strip().lower()}".encode()).hexdigest()
    return {"objectType": "Agent", "mbox_sha1sum": digest}


def activity(iri: str, kind: str, name: str, language: str) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": ACTIVITY_TYPES[kind]}
    if name:
        definition["name"] = {language: name}
    return {"objectType": "Activity", "id": iri, "definition": definition}


@dataclass(frozen=True)
class Facts:
    """What every statement of one event needs, looked up by the handler."""

    school: str
    event_id: int
    timestamp: dt.datetime
    base: str  # the activities' IRIs start with it (the school's home page, no trailing /)
    actor: dict[str, Any]
    language: str
    course_id: int
    course_title: str
    registration: str | None  # None: no enrollment found (an admin's own activity)

    @property
    def course(self) -> dict[str, Any]:
        return activity(f"{self.base}/courses/{self.course_id}", "course", self.course_title,
                        self.language)

    def module_iri(self, module_id: int) -> str:
        return f"{self.base}/courses/{self.course_id}/modules/{module_id}"


def statement(facts: Facts, kind: str, verb: str, obj: dict[str, Any], *,
              result: dict[str, Any] | None = None, in_course: bool = True,
              extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    """One statement: `in_course` puts the course as the parent activity (a statement about a
    module, quiz, video or assignment); the course's own statements have none."""
    context: dict[str, Any] = {"platform": PLATFORM, "language": facts.language}
    if facts.registration:
        context["registration"] = facts.registration
    if in_course:
        context["contextActivities"] = {"parent": [facts.course]}
    if extensions:
        context["extensions"] = extensions
    out: dict[str, Any] = {
        "id": statement_id(facts.school, facts.event_id, kind),
        "actor": facts.actor,
        "verb": VERBS[verb].json(),
        "object": obj,
        "context": context,
        "timestamp": _iso(facts.timestamp),
    }
    if result is not None:
        out["result"] = result
    return out


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- one function per event kind ----------------------------------------------------------------


def registered(f: Facts) -> dict[str, Any]:
    return statement(f, "registered", "registered", f.course, in_course=False)


def module_completed(f: Facts, module_id: int, module_title: str) -> dict[str, Any]:
    return statement(f, "module_completed", "completed",
                     activity(f.module_iri(module_id), "module", module_title, f.language),
                     result={"completion": True})


def video_progressed(f: Facts, module_id: int, module_title: str, milestone: int,
                     duration_seconds: float | None) -> dict[str, Any]:
    # The milestone (25/50/75/100) as cmi5's integer progress; the exact share watched is
    # noise between learners' players.
    result: dict[str, Any] = {"extensions": {PROGRESS_EXTENSION: int(milestone)}}
    if milestone >= 100:
        result["completion"] = True
    ext = ({VIDEO_LENGTH_EXTENSION: round(float(duration_seconds), 3)}
           if duration_seconds else None)
    return statement(f, f"video_progressed:{milestone}", "progressed",
                     activity(f"{f.module_iri(module_id)}/video", "video", module_title,
                              f.language),
                     result=result, extensions=ext)


def quiz_activity(f: Facts, quiz_id: int, title: str) -> dict[str, Any]:
    return activity(f"{f.base}/quizzes/{quiz_id}", "assessment", title, f.language)


def quiz_attempted(f: Facts, quiz_id: int, title: str) -> dict[str, Any]:
    return statement(f, "quiz_attempted", "attempted", quiz_activity(f, quiz_id, title))


def quiz_graded(f: Facts, quiz_id: int, title: str, percent: float,
                passed: bool) -> dict[str, Any]:
    pct = max(0.0, min(100.0, float(percent)))
    result = {"score": {"scaled": round(pct / 100, 4), "raw": round(pct, 2), "min": 0,
                        "max": 100},
              "success": passed, "completion": True}
    return statement(f, "quiz_graded", "passed" if passed else "failed",
                     quiz_activity(f, quiz_id, title), result=result)


def assignment_activity(f: Facts, assignment_id: int, title: str) -> dict[str, Any]:
    return activity(f"{f.base}/assignments/{assignment_id}", "assignment", title, f.language)


def assignment_submitted(f: Facts, assignment_id: int, title: str) -> dict[str, Any]:
    return statement(f, "assignment_submitted", "submitted",
                     assignment_activity(f, assignment_id, title),
                     result={"completion": True})


def assignment_graded(f: Facts, assignment_id: int, title: str, points: int,
                      max_points: int) -> dict[str, Any]:
    score: dict[str, Any] = {"raw": points, "min": 0, "max": max_points}
    if max_points > 0:
        # raw within [min, max], scaled within [-1, 1]: the spec's rules (a bonus point over
        # the maximum would make the whole statement invalid).
        score["raw"] = max(0, min(points, max_points))
        score["scaled"] = round(score["raw"] / max_points, 4)
    else:
        score = {"raw": max(0, points), "min": 0}
    return statement(f, "assignment_graded", "scored",
                     assignment_activity(f, assignment_id, title),
                     result={"score": score, "completion": True})


def course_completed(f: Facts) -> dict[str, Any]:
    return statement(f, "course_completed", "completed", f.course, in_course=False,
                     result={"completion": True})


def certificate_earned(f: Facts, certificate_id: str) -> dict[str, Any]:
    badge = activity(f"{f.base}/certificates/{certificate_id}", "badge",
                     f"Certificate: {f.course_title}" if f.course_title else "", f.language)
    return statement(f, "certificate_earned", "earned", badge)
