"""Media tables: stored objects (videos, attached files, submissions, profile photos),
assignments and submissions."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Assignment(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        instructions = TextField(default='')
        due_at = UTCDateTimeField(null=True)
        max_points = IntegerField(default=100)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'media_assignment'
            indexes = ((('tenant', 'course_id', 'module_id'), True),)
    db.create_tables([Assignment])

    class MediaObject(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        kind = CharField(max_length=20)
        course_id = IntegerField()
        module_id = IntegerField()
        key = CharField(max_length=300)
        filename = CharField(default='')
        content_type = CharField(max_length=120)
        size = BigIntegerField()
        sha256 = CharField(max_length=64)
        duration_seconds = IntegerField(null=True)
        uploader_id = IntegerField()
        user_id = IntegerField(null=True)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'media_object'
            indexes = ((('tenant', 'course_id', 'module_id', 'kind'), False), (('tenant', 'key'), True))
    db.create_tables([MediaObject])

    class Submission(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        assignment = ForeignKeyField(Assignment, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        student_id = IntegerField()
        media_id = IntegerField()
        attempt = IntegerField(default=1)
        status = CharField(max_length=20, default='submitted')
        points = IntegerField(null=True)
        feedback = TextField(default='')
        grader_id = IntegerField(null=True)
        submitted_at = UTCDateTimeField()
        graded_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'media_submission'
            indexes = ((('tenant', 'assignment', 'student_id'), True),)
    db.create_tables([Submission])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('media_submission'))
    migrator.migrate(migrator.drop_table('media_object'))
    migrator.migrate(migrator.drop_table('media_assignment'))
