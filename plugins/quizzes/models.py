"""Quizzes tables: a quiz per module, its questions as authored now, frozen versions that
attempts are graded against, attempts (answers and grades inside), and one row per student and
quiz that holds the counted score and serialises that student's attempts."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow


class Quiz(TenantModel):
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    title = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    pass_mark = peewee.FloatField(default=50.0)  # percent
    time_limit_seconds = peewee.IntegerField(null=True)
    max_attempts = peewee.IntegerField(null=True)  # None: unlimited
    shuffle_questions = peewee.BooleanField(default=False)
    shuffle_options = peewee.BooleanField(default=False)
    counted = peewee.CharField(max_length=10, default="best")  # best | last
    results = peewee.CharField(max_length=20, default="immediate")
    results_at = UTCDateTimeField(null=True)  # results == "after_date"
    version = peewee.IntegerField(default=1)  # the current QuizVersion.number
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "quizzes_quiz"
        indexes = (
            (("tenant", "module_id"), True),  # one quiz per module
            (("tenant", "course_id"), False),
        )


class Question(TenantModel):
    """A question as the quiz is now; its id is the key of answers. Attempts never read this
    table: they are graded against the frozen copy in their QuizVersion."""

    quiz = peewee.ForeignKeyField(Quiz, on_delete="CASCADE", lazy_load=False)
    position = peewee.IntegerField()
    type = peewee.CharField(max_length=20)
    prompt = peewee.TextField()
    options = JSONField(default=list)
    answer = JSONField(null=True)
    points = peewee.FloatField(default=1.0)
    settings = JSONField(default=dict)  # scoring, tolerance, accept, accept_regex, case_sensitive
    # Removed questions stay as rows: SQLite would hand a deleted highest id to the next new
    # question, and a question id must never name two different questions.
    removed = peewee.BooleanField(default=False)

    class Meta:
        table_name = "quizzes_question"
        indexes = ((("tenant", "quiz", "position"), False),)


class QuizVersion(TenantModel):
    """A frozen copy of the questions (with answers) and pass mark. Edits rewrite the current
    version while no attempt uses it, and start a new one once one does."""

    quiz = peewee.ForeignKeyField(Quiz, on_delete="CASCADE", lazy_load=False)
    number = peewee.IntegerField()
    pass_mark = peewee.FloatField()
    questions = JSONField(default=list)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "quizzes_version"
        indexes = ((("tenant", "quiz", "number"), True),)


class Attempt(TenantModel):
    quiz = peewee.ForeignKeyField(Quiz, on_delete="CASCADE", lazy_load=False)
    version = peewee.ForeignKeyField(QuizVersion, on_delete="CASCADE", lazy_load=False)
    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField()
    number = peewee.IntegerField()  # 1, 2, ... per student and quiz
    # in_progress -> submitted (waiting for an instructor) -> graded
    status = peewee.CharField(max_length=12, default="in_progress")
    started_at = UTCDateTimeField(default=utcnow)
    deadline = UTCDateTimeField(null=True)  # started_at + time limit (no grace)
    layout = JSONField(default=list)  # [[question_id, [option indices in display order]], ...]
    answers = JSONField(default=dict)  # {question_id: answer}, as saved or submitted
    saved_at = JSONField(default=dict)  # {question_id: ISO time it was last saved}
    manual = JSONField(default=dict)  # {question_id: {points, feedback, by, at}}
    results = JSONField(default=list)  # [QuestionResult.as_dict()]
    submitted_at = UTCDateTimeField(null=True)
    late = peewee.BooleanField(default=False)
    points = peewee.FloatField(null=True)
    max_points = peewee.FloatField(null=True)
    percent = peewee.FloatField(null=True)
    passed = peewee.BooleanField(null=True)
    pending = peewee.IntegerField(default=0)  # answers waiting for an instructor
    needs_review = peewee.BooleanField(default=False)
    feedback = peewee.TextField(default="")
    graded_at = UTCDateTimeField(null=True)
    reviewed_at = UTCDateTimeField(null=True)
    reviewed_by = peewee.IntegerField(null=True)

    class Meta:
        table_name = "quizzes_attempt"
        indexes = (
            (("tenant", "quiz", "user_id", "number"), True),
            (("tenant", "quiz", "needs_review", "id"), False),
            (("tenant", "status", "deadline"), False),  # the close_expired sweep
        )


class StudentQuiz(TenantModel):
    """One student's standing in one quiz: the counted score and the attempt count. Every
    change to a student's attempts of a quiz locks this row first (PostgreSQL: FOR UPDATE;
    SQLite: the write lock taken at BEGIN), so two concurrent submits grade once."""

    quiz = peewee.ForeignKeyField(Quiz, on_delete="CASCADE", lazy_load=False)
    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField()
    attempts = peewee.IntegerField(default=0)
    counted_attempt_id = peewee.IntegerField(null=True)
    percent = peewee.FloatField(null=True)  # the counted (best or last) graded score
    passed = peewee.BooleanField(null=True)
    passed_at = UTCDateTimeField(null=True)  # first pass: quiz.passed.v1 is recorded once
    updated_at = UTCDateTimeField(default=utcnow)
    quiz_row: Quiz  # set by a join with attr="quiz_row" (QuizzesService.scores)

    class Meta:
        table_name = "quizzes_student"
        indexes = (
            (("tenant", "quiz", "user_id"), True),
            (("tenant", "course_id", "user_id"), False),
        )


MODELS = (Quiz, Question, QuizVersion, Attempt, StudentQuiz)
