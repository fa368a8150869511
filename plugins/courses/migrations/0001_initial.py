"""Courses tables: courses, tags, modules, transitions."""
from peewee import *
from learnplat.models import UTCDateTimeField


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
        thumbnail_key = CharField(max_length=300, default='')
        published_at = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'courses_course'
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


def down(migrator, db):
    migrator.migrate(migrator.drop_table('courses_module'))
    migrator.migrate(migrator.drop_table('courses_transition'))
    migrator.migrate(migrator.drop_table('courses_tag'))
    migrator.migrate(migrator.drop_table('courses_course'))
