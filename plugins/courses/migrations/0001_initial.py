"""Courses tables: courses, tags, modules, transitions, ratings, feedback; catalogue search."""
from peewee import *
from learnplat.plugin import UTCDateTimeField

# The catalogue's full-text search (PostgreSQL only; SQLite searches with instr()).
# Not an expression index on courses_course: under row-level security PostgreSQL will not use
# an index for a non-leakproof operator such as @@ (it must apply the tenant policy first), so
# the app role could never use it. courses_search holds only (course id, tsvector), has no
# tenant column and no policy, is kept by a trigger, and is only ever used as
# "courses_course.id IN (SELECT course_id FROM courses_search WHERE document @@ ...)", where
# the outer, RLS-protected query limits the answer to the tenant. docs/decisions/0200-course-search-table.md.
SEARCH_SQL = (
    "CREATE TABLE IF NOT EXISTS courses_search ("
    " course_id integer PRIMARY KEY REFERENCES courses_course (id) ON DELETE CASCADE,"
    " document tsvector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS courses_search_document ON courses_search USING gin (document)",
    "CREATE OR REPLACE FUNCTION courses_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    " INSERT INTO courses_search (course_id, document) VALUES (NEW.id,"
    "  to_tsvector('simple'::regconfig, coalesce(NEW.title, '') || ' ' ||"
    "  coalesce(NEW.description, '')))"
    " ON CONFLICT (course_id) DO UPDATE SET document = EXCLUDED.document;"
    " RETURN NULL; "
    "END $$",
    "DROP TRIGGER IF EXISTS courses_search_sync ON courses_course",
    "CREATE TRIGGER courses_search_sync AFTER INSERT OR UPDATE OF title, description"
    " ON courses_course FOR EACH ROW EXECUTE FUNCTION courses_search_sync()",
)


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Course(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        owner_id = IntegerField(index=True)
        title = CharField(max_length=200)
        description = TextField(default='')
        language = CharField(index=True, max_length=16, default='en')
        level = CharField(index=True, max_length=20, default='beginner')
        status = CharField(index=True, max_length=20, default='draft')
        rejection_reason = TextField(default='')
        image_key = CharField(max_length=300, default='')
        image_content_type = CharField(max_length=60, default='')
        thumbnail_key = CharField(max_length=300, default='')
        rating_count = IntegerField(default=0)
        rating_sum = IntegerField(default=0)
        published_at = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_course'
            indexes = ((('tenant', 'status', 'id'), False),)
    db.create_tables([Course])

    class CourseTag(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course = ForeignKeyField(Course, on_delete='CASCADE')
        tag = CharField(index=True, max_length=40)
        class Meta:
            database = db
            table_name = 'courses_tag'
            indexes = ((('course', 'tag'), True),)
    db.create_tables([CourseTag])

    class CourseTransition(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course = ForeignKeyField(Course, on_delete='CASCADE')
        action = CharField(max_length=20, default='')
        from_status = CharField(max_length=20)
        to_status = CharField(max_length=20)
        actor_id = IntegerField(null=True)
        reason = TextField(default='')
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_transition'
    db.create_tables([CourseTransition])

    class Module(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course = ForeignKeyField(Course, on_delete='CASCADE')
        title = CharField(max_length=200)
        description = TextField(default='')
        position = IntegerField(default=0)
        kind = CharField(max_length=20, default='text')
        estimated_minutes = IntegerField(default=0)
        required = BooleanField(default=True)
        prerequisite = ForeignKeyField('self', null=True, on_delete='SET NULL')
        release_at = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_module'
            indexes = ((('course', 'position'), False),)
    db.create_tables([Module])

    class Rating(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course = ForeignKeyField(Course, on_delete='CASCADE')
        user_id = IntegerField(index=True)
        stars = SmallIntegerField()
        comment = TextField(default='')
        reply = TextField(default='')
        reply_by = IntegerField(null=True)
        replied_at = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_rating'
            indexes = ((('course', 'user_id'), True),)
    db.create_tables([Rating])

    class FeedbackThread(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course = ForeignKeyField(Course, on_delete='CASCADE')
        student_id = IntegerField()
        subject = CharField(max_length=200)
        message_count = IntegerField(default=0)
        created_at = UTCDateTimeField()
        last_message_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_feedback_thread'
            indexes = ((('course', 'student_id'), False),)
    db.create_tables([FeedbackThread])

    class FeedbackMessage(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        thread = ForeignKeyField(FeedbackThread, on_delete='CASCADE')
        author_id = IntegerField()
        body = TextField()
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_feedback_message'
    db.create_tables([FeedbackMessage])

    if isinstance(db, PostgresqlDatabase):
        for sql in SEARCH_SQL:
            db.execute_sql(sql)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TABLE IF EXISTS courses_search")
        db.execute_sql("DROP FUNCTION IF EXISTS courses_search_sync() CASCADE")
    for table in ('courses_feedback_message', 'courses_feedback_thread', 'courses_rating',
                  'courses_module', 'courses_transition', 'courses_tag', 'courses_course'):
        migrator.migrate(migrator.drop_table(table))
