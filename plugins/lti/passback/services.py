"""Grade passback's domain logic: the scores made of progress and quiz events for learners
with grade targets (GradeTarget: stored at each launch from a platform, with its AGS claim),
queued on the delivery engine; the passbacks' log as instructors and admins read it;
redelivery; telling admins when the engine gives up on a platform.

A score goes to the target's ``lineitem`` (the line item the platform made for the resource
link: what Canvas and Moodle send). A target with only a ``lineitems`` URL (the platform
lets the tool make its own line items) gets no passback: we would have to create and then
find the line item, which needs the lineitem scope and a tag per course; not done yet
(docs/lti.md says so)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from learnplat_courses.api import COURSES
from learnplat_progress.api import PROGRESS
from pydantic import BaseModel

from learnplat.plugin import (
    DestinationInfo,
    EventMessage,
    MessageInfo,
    NotFound,
    Principal,
    api_timestamp,
)

from ..claims import SCOPE_SCORE
from ..models import GradeTarget, PlatformRegistration
from .sink import SINK

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

log = logging.getLogger(__name__)

READ = "lti.passbacks.read"
REDELIVER = "lti.passbacks.redeliver"
SCAN_PAGE = 200  # messages read per query when a filter is applied to what they carry
SCAN_LIMIT = 20  # pages read at most for one page of the log (the rest: next_cursor)

# The events read, by name (the quizzes plugin is optional; progress's fields as a model).
MODULE_COMPLETED = "progress.module_completed.v1"
MODULE_RESET = "progress.module_reset.v1"
COURSE_COMPLETED = "course.completed.v1"
ASSIGNMENT_GRADED = "assignment.graded.v1"
QUIZ_GRADED = "quiz.graded.v1"


class Learner(BaseModel):
    course_id: int
    user_id: int


class ModulePayload(Learner):
    module_id: int
    source: str = ""  # of a module completed or reset: manual | video | quiz | assignment


class AssignmentGradedPayload(BaseModel):
    """The media plugin names the learner `student_id`."""

    course_id: int
    module_id: int
    student_id: int
    points: float
    max_points: float

    @property
    def user_id(self) -> int:
        return self.student_id


class QuizGradedPayload(ModulePayload):
    percent: float
    passed: bool


Activity = Literal["Initialized", "Started", "InProgress", "Submitted", "Completed"]
Grading = Literal["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"]


def score(sub: str, given: float, maximum: float, activity: Activity, grading: Grading,
          at: dt.datetime, comment: str = "") -> dict[str, Any]:
    """An AGS score (application/vnd.ims.lis.v1.score+json). `at` is the event's time, so a
    late retry never overwrites a newer grade (platforms keep the newest timestamp)."""
    out: dict[str, Any] = {"userId": sub, "scoreGiven": round(given, 2),
                           "scoreMaximum": maximum, "activityProgress": activity,
                           "gradingProgress": grading, "timestamp": api_timestamp(at)}
    if comment:
        out["comment"] = comment
    return out


class PassbackService:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    @property
    def outbound(self) -> Any:
        return self.plugin.runtime.outbound

    # -- making scores of events -----------------------------------------------------------

    def targets(self, course_id: int, user_id: int) -> list[GradeTarget]:
        """The learner's grade targets in the course whose platform is enabled and let us
        post scores (the launch's AGS claim had the score scope and a line item)."""
        rows = (GradeTarget.select(GradeTarget, PlatformRegistration)
                .join(PlatformRegistration)
                .where((GradeTarget.course_id == course_id)
                       & (GradeTarget.user_id == user_id)
                       & PlatformRegistration.enabled))
        out = []
        for row in rows:
            if SCOPE_SCORE not in (row.scopes or []):
                continue
            if not row.lineitem_url:
                log.info("lti passback: grade target %s has no line item (lineitems only): "
                         "not sent", row.id)
                continue
            out.append(row)
        return out

    def queue(self, target: GradeTarget, event: EventMessage[Any], body: dict[str, Any]
              ) -> bool:
        """One score for one target; the key (target, event) makes a repeated handler add
        nothing."""
        payload = {"target_id": target.id, "platform_id": target.platform_id,
                   "course_id": target.course_id, "module_id": target.module_id,
                   "user_id": target.user_id, "lineitem": target.lineitem_url, "score": body}
        return bool(self.outbound.enqueue(SINK, str(target.platform_id),
                                          f"t{target.id}:e{event.id}", payload,
                                          event_id=event.id, event_type=event.name))

    def course_figures(self, course_id: int, user_id: int) -> tuple[float, bool]:
        summary = self.plugin.runtime.service(PROGRESS).summary(course_id, user_id)
        if summary is None:
            return 0.0, False
        return float(summary.percent), bool(summary.completed)

    def course_score(self, target: GradeTarget, event: EventMessage[Any],
                     completed: bool | None = None) -> dict[str, Any]:
        """The course percent out of 100: Completed and FullyGraded once the course is."""
        percent, done = self.course_figures(target.course_id, target.user_id)
        done = done or bool(completed)
        return score(target.sub, percent, 100, "Completed" if done else "InProgress",
                     "FullyGraded" if done else "Pending", event.created_at)

    def on_progress(self, event: EventMessage[Any]) -> None:
        """A module completed or reset (every change of the course percent; the milestone
        event would repeat one): the course-level targets get the course percent; a
        module-level target of that module gets 100 when completed, 0 when reset, unless a
        quiz or an assignment completed it: its grade is the module's outcome (sent by
        on_quiz_graded / on_assignment_graded), not replaced by a later 100."""
        d: ModulePayload = event.data
        module_id = d.module_id
        graded = d.source in ("quiz", "assignment")
        for target in self.targets(d.course_id, d.user_id):
            if target.module_id is None:
                self.queue(target, event, self.course_score(target, event))
            elif graded:
                continue
            elif target.module_id == module_id and event.name == MODULE_COMPLETED:
                self.queue(target, event, score(target.sub, 100, 100, "Completed",
                                                "FullyGraded", event.created_at))
            elif target.module_id == module_id and event.name == MODULE_RESET:
                self.queue(target, event, score(target.sub, 0, 100, "InProgress",
                                                "Pending", event.created_at))

    def on_course_completed(self, event: EventMessage[Any]) -> None:
        d = event.data
        for target in self.targets(d.course_id, d.user_id):
            if target.module_id is None:
                self.queue(target, event, self.course_score(target, event, completed=True))

    def on_quiz_graded(self, event: EventMessage[Any]) -> None:
        """A module-level target of the quiz's module gets the quiz's percent."""
        d: QuizGradedPayload = event.data
        for target in self.targets(d.course_id, d.user_id):
            if target.module_id == d.module_id:
                self.queue(target, event, score(
                    target.sub, d.percent, 100, "Completed", "FullyGraded", event.created_at,
                    comment="Passed" if d.passed else "Not passed"))

    def on_assignment_graded(self, event: EventMessage[Any]) -> None:
        """A module-level target of the assignment's module gets its points."""
        d: AssignmentGradedPayload = event.data
        if d.max_points <= 0:
            return  # nothing an LMS could record as a score
        for target in self.targets(d.course_id, d.user_id):
            if target.module_id == d.module_id:
                self.queue(target, event, score(
                    target.sub, d.points, d.max_points, "Completed", "FullyGraded",
                    event.created_at))

    # -- the log -------------------------------------------------------------------------------

    def visible_courses(self, principal: Principal) -> set[int] | None:
        """The courses whose passbacks `principal` may read: None for all (an admin), else
        the courses they own among those with grade targets."""
        if principal.can(READ):
            return None
        ids = sorted({t.course_id for t in GradeTarget.select(GradeTarget.course_id)
                      .distinct()})
        courses = self.plugin.runtime.service(COURSES).get_courses(ids)
        return {cid for cid, c in courses.items() if principal.can(READ, owner_id=c.owner_id)}

    def may_see(self, principal: Principal, m: MessageInfo) -> bool:
        allowed = self.visible_courses(principal)
        return allowed is None or _payload(m).get("course_id") in allowed

    def entries(self, principal: Principal, *, course_id: int | None, user_id: int | None,
                status: str | None, before_id: int | None, limit: int
                ) -> tuple[list[MessageInfo], int | None]:
        """One page of the passbacks `principal` may read, newest first, and the cursor of
        the next (None: no more). The engine filters by status; what a message carries
        (course, learner) is filtered here, reading at most SCAN_LIMIT pages: a page may then
        hold fewer than `limit` entries and still have a next cursor."""
        allowed = self.visible_courses(principal)
        if course_id is not None:
            if allowed is not None and course_id not in allowed:
                return [], None
            allowed = {course_id}
        if allowed is not None and not allowed:
            return [], None
        out: list[MessageInfo] = []
        cursor = before_id
        for _ in range(SCAN_LIMIT):
            batch = self.outbound.messages(SINK, statuses=(status,) if status else (),
                                           before_id=cursor, limit=SCAN_PAGE)
            for m in batch:
                p = _payload(m)
                if (allowed is None or p.get("course_id") in allowed) and (
                        user_id is None or p.get("user_id") == user_id):
                    out.append(m)
                    if len(out) == limit:
                        return out, m.id
            if len(batch) < SCAN_PAGE:
                return out, None
            cursor = batch[-1].id
        return out, cursor

    def entry(self, principal: Principal, message_id: int) -> MessageInfo:
        m = self.outbound.message(SINK, message_id)
        if m is None or not self.may_see(principal, m):
            raise NotFound("no such passback in this school")
        return m

    def attempts(self, message_id: int) -> list[Any]:
        return list(self.outbound.attempts(message_id))

    def destination(self, m: MessageInfo) -> DestinationInfo | None:
        return self.outbound.destination(SINK, m.ref)

    def redeliver(self, principal: Principal, message_id: int) -> MessageInfo:
        """Send one passback again, whatever its status. An admin's redelivery also switches
        its platform's destination on again when the engine had disabled it (the admin
        says it is fixed); an instructor's waits for that."""
        m = self.entry(principal, message_id)
        course = _payload(m).get("course_id")
        owner = self.plugin.runtime.service(COURSES).get_course(int(course)) if course else None
        principal.require(REDELIVER, owner_id=owner.owner_id if owner else None)
        d = self.destination(m)
        if d is not None and d.disabled_at is not None and principal.can(REDELIVER):
            platform = PlatformRegistration.select().where(
                PlatformRegistration.id == int(m.ref)).first() if m.ref.isdigit() else None
            if platform is not None and platform.enabled:
                self.outbound.enable(SINK, m.ref)
        self.outbound.redeliver(SINK, ids=[m.id],
                                statuses=("failed", "delivered", "cancelled", "pending"))
        return self.entry(principal, m.id)

    def iter_all(self) -> Iterator[MessageInfo]:
        """Every passback of the school, newest first (the CLI)."""
        cursor = None
        while True:
            batch = self.outbound.messages(SINK, before_id=cursor, limit=SCAN_PAGE)
            yield from batch
            if len(batch) < SCAN_PAGE:
                return
            cursor = batch[-1].id


def _payload(m: MessageInfo) -> dict[str, Any]:
    return m.payload if isinstance(m.payload, dict) else {}


def handlers_of(service: PassbackService) -> Sequence[tuple[str, str, type[BaseModel], Any]]:
    """(event name, handler name, payload model, method) of what makes scores."""
    return [
        (MODULE_COMPLETED, "passback_module_completed", ModulePayload, service.on_progress),
        (MODULE_RESET, "passback_module_reset", ModulePayload, service.on_progress),
        (COURSE_COMPLETED, "passback_course_completed", Learner,
         service.on_course_completed),
        (QUIZ_GRADED, "passback_quiz_graded", QuizGradedPayload, service.on_quiz_graded),
        (ASSIGNMENT_GRADED, "passback_assignment_graded", AssignmentGradedPayload,
         service.on_assignment_graded),
    ]
