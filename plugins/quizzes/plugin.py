"""The quizzes plugin's object: its hooks, and its service once the runtime is built
(the class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat_courses.events import CourseDeleted, ModuleRemoved

from learnplat.plugin import (
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Plugin,
    ProblemCode,
    Route,
    ServiceKey,
    TaskSpec,
    hookimpl,
)

from . import events as ev
from . import resources as r
from . import seed as generated
from .api import QUIZZES
from .models import MODELS
from .review import ReviewService
from .services import QuizzesService
from .settings import QuizzesSettings
from .tasks import tasks

if TYPE_CHECKING:
    from learnplat.plugin import Runtime, Seed

OWNER_OR_ADMIN = {"admin": "any", "instructor": "own"}


class QuizzesPlugin(Plugin):
    """Quizzes in a course's modules: authoring, attempts with time limits, grading and
    review, results released by policy."""

    requires = ("courses", "enrollment")
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "quiz_exists": ProblemCode(409, "The module has a quiz already (one per module)."),
        "module_locked": ProblemCode(
            409, "The quiz's module is locked: not released yet (`release_at`) or its "
            "prerequisite module is not completed (`prerequisite_id`); `reason` says which."),
        "max_attempts_reached": ProblemCode(
            409, "Every attempt the quiz allows (`max_attempts`) is used."),
        "empty_quiz": ProblemCode(409, "The quiz has no questions yet: nothing to attempt."),
        "already_submitted": ProblemCode(
            409, "The attempt is submitted: its answers can no longer change."),
        "time_up": ProblemCode(
            409, "The attempt's time limit has passed: it is submitted with the answers saved "
            "so far."),
        "no_open_attempt": ProblemCode(
            409, "No attempt of this quiz is open: start a new attempt first."),
        "not_submitted": ProblemCode(
            409, "The attempt is still in progress: it can be reviewed once submitted."),
    }
    quizzes: QuizzesService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"quizzes": QuizzesSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission("quiz.author", "Create, edit and delete a course's quizzes",
                       OWNER_OR_ADMIN),
            Permission("quiz.read", "Open a quiz (authors: with answers; students: a summary)",
                       {"admin": "any", "instructor": "any", "student": "any"}),
            Permission("quiz.take", "Take the quizzes of courses one is enrolled in",
                       {"student": "any"}),
            Permission("quiz.review", "List and grade a course's quiz submissions",
                       OWNER_OR_ADMIN),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.quizzes = QuizzesService(runtime)
        return {QUIZZES: self.quizzes}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.quizzes
        review = ReviewService(svc)
        q = "/courses/{course_id:int}/modules/{module_id:int}/quiz"
        i = f"{q}/{{quiz_id:int}}"
        a = f"{i}/attempts/{{attempt_id:int}}"
        return [
            Route(q, r.QuizModule(svc)),
            Route(i, r.QuizItem(svc)),
            Route(f"{i}/questions", r.QuestionCollection(svc)),
            Route(f"{i}/questions/order", r.QuestionOrder(svc)),
            Route(f"{i}/questions/{{question_id:int}}", r.QuestionItem(svc)),
            Route(f"{i}/attempts", r.AttemptCollection(svc)),
            Route(a, r.AttemptItem(svc)),
            Route(f"{a}/answers", r.AttemptAnswers(svc)),
            Route(f"{a}/grade", r.AttemptGrade(review)),
            Route(f"{i}/submit", r.Submit(svc)),
            Route(f"{i}/result", r.Result(svc)),
            Route(f"{i}/submissions", r.Submissions(review)),
        ]

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return tasks()

    def on_module_removed(self, runtime: Runtime, event: EventMessage[ModuleRemoved]) -> None:
        self.quizzes.forget_module(event.data.module_id)

    def on_course_deleted(self, runtime: Runtime, event: EventMessage[CourseDeleted]) -> None:
        self.quizzes.forget_course(event.data.course_id)

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        # Deleting is idempotent: a redelivered event finds nothing left to delete.
        return [
            EventHandler(ModuleRemoved, "forget_module_quiz", self.on_module_removed),
            EventHandler(CourseDeleted, "forget_course_quizzes", self.on_course_deleted),
        ]

    # -- hooks of the courses and progress plugins ----------------------------------------------

    @hookimpl
    def course_analytics(self, runtime: Runtime, course_id: int) -> dict[str, Any] | None:
        """average_quiz_score (mean counted score over graded students and quizzes) and a
        per-quiz section; two aggregate queries whatever the number of students."""
        svc = self.quizzes
        quizzes = svc.quiz_stats(course_id)
        if not quizzes:
            return None
        return {"average_quiz_score": svc.average_score(course_id), "quizzes": quizzes}

    @hookimpl
    def progress_extras(self, runtime: Runtime, course_id: int, user_id: Any
                        ) -> dict[str, Any] | None:
        """The student's standing in each quiz of the course they attempted (scores only
        where the results policy has released them)."""
        scores = self.quizzes.scores(course_id, int(user_id))
        if not scores:
            return None
        return {"quizzes": [{"quiz_id": s.quiz_id, "module_id": s.module_id, "title": s.title,
                             "attempts": s.attempts, "score": s.percent, "passed": s.passed}
                            for s in scores]}

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(self.quizzes, seed)
