"""Quizzes tables: quizzes, questions, frozen versions, attempts, per-student standing."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Quiz(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        title = CharField(max_length=200)
        description = TextField(default='')
        pass_mark = FloatField(default=50.0)
        time_limit_seconds = IntegerField(null=True)
        max_attempts = IntegerField(null=True)
        shuffle_questions = BooleanField(default=False)
        shuffle_options = BooleanField(default=False)
        counted = CharField(max_length=10, default='best')
        results = CharField(max_length=20, default='immediate')
        results_at = UTCDateTimeField(null=True)
        version = IntegerField(default=1)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'quizzes_quiz'
            indexes = ((('tenant', 'module_id'), True), (('tenant', 'course_id'), False))
    db.create_tables([Quiz])

    class QuizVersion(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        quiz = ForeignKeyField(Quiz, on_delete='CASCADE')
        number = IntegerField()
        pass_mark = FloatField()
        questions = JSONField(default=list)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'quizzes_version'
            indexes = ((('tenant', 'quiz', 'number'), True),)
    db.create_tables([QuizVersion])

    class Attempt(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        quiz = ForeignKeyField(Quiz, on_delete='CASCADE')
        version = ForeignKeyField(QuizVersion, on_delete='CASCADE')
        course_id = IntegerField()
        user_id = IntegerField()
        number = IntegerField()
        status = CharField(max_length=12, default='in_progress')
        started_at = UTCDateTimeField()
        deadline = UTCDateTimeField(null=True)
        layout = JSONField(default=list)
        answers = JSONField(default=dict)
        saved_at = JSONField(default=dict)
        manual = JSONField(default=dict)
        results = JSONField(default=list)
        submitted_at = UTCDateTimeField(null=True)
        late = BooleanField(default=False)
        points = FloatField(null=True)
        max_points = FloatField(null=True)
        percent = FloatField(null=True)
        passed = BooleanField(null=True)
        pending = IntegerField(default=0)
        needs_review = BooleanField(default=False)
        feedback = TextField(default='')
        graded_at = UTCDateTimeField(null=True)
        reviewed_at = UTCDateTimeField(null=True)
        reviewed_by = IntegerField(null=True)
        class Meta:
            database = db
            table_name = 'quizzes_attempt'
            indexes = ((('tenant', 'quiz', 'user_id', 'number'), True), (('tenant', 'quiz', 'needs_review', 'id'), False), (('tenant', 'status', 'deadline'), False))
    db.create_tables([Attempt])

    class Question(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        quiz = ForeignKeyField(Quiz, on_delete='CASCADE')
        position = IntegerField()
        type = CharField(max_length=20)
        prompt = TextField()
        options = JSONField(default=list)
        answer = JSONField(null=True)
        points = FloatField(default=1.0)
        settings = JSONField(default=dict)
        removed = BooleanField(default=False)
        class Meta:
            database = db
            table_name = 'quizzes_question'
            indexes = ((('tenant', 'quiz', 'position'), False),)
    db.create_tables([Question])

    class StudentQuiz(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        quiz = ForeignKeyField(Quiz, on_delete='CASCADE')
        course_id = IntegerField()
        user_id = IntegerField()
        attempts = IntegerField(default=0)
        counted_attempt_id = IntegerField(null=True)
        percent = FloatField(null=True)
        passed = BooleanField(null=True)
        passed_at = UTCDateTimeField(null=True)
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'quizzes_student'
            indexes = ((('tenant', 'quiz', 'user_id'), True), (('tenant', 'course_id', 'user_id'), False))
    db.create_tables([StudentQuiz])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('quizzes_student'))
    migrator.migrate(migrator.drop_table('quizzes_question'))
    migrator.migrate(migrator.drop_table('quizzes_attempt'))
    migrator.migrate(migrator.drop_table('quizzes_version'))
    migrator.migrate(migrator.drop_table('quizzes_quiz'))
