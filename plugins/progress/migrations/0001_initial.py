"""Progress tables: course progress per enrollment, module progress, handled events."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class CourseProgress(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        user_id = IntegerField(index=True)
        status = CharField(max_length=10, default='active')
        percent = FloatField(default=0.0)
        completed_count = IntegerField(default=0)
        required_count = IntegerField(default=0)
        completed_at = UTCDateTimeField(null=True)
        milestone_50_at = UTCDateTimeField(null=True)
        milestone_100_at = UTCDateTimeField(null=True)
        last_activity_at = UTCDateTimeField()
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'progress_course'
            indexes = ((('tenant', 'course_id', 'user_id'), True), (('tenant', 'course_id', 'status', 'percent', 'id'), False), (('tenant', 'course_id', 'status', 'last_activity_at', 'id'), False))
    db.create_tables([CourseProgress])

    class HandledEvent(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        event_id = BigIntegerField()
        handler = CharField(max_length=60)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'progress_handled_event'
            indexes = ((('tenant', 'event_id', 'handler'), True),)
    db.create_tables([HandledEvent])

    class ModuleProgress(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        user_id = IntegerField()
        completed_at = UTCDateTimeField(null=True)
        completed_source = CharField(null=True, max_length=10)
        last_position = FloatField(default=0.0)
        furthest_position = FloatField(default=0.0)
        watched_seconds = FloatField(default=0.0)
        duration_seconds = FloatField(null=True)
        last_heartbeat_at = UTCDateTimeField(null=True)
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'progress_module'
            indexes = ((('tenant', 'course_id', 'user_id', 'module_id'), True), (('tenant', 'course_id', 'module_id'), False))
    db.create_tables([ModuleProgress])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('progress_module'))
    migrator.migrate(migrator.drop_table('progress_handled_event'))
    migrator.migrate(migrator.drop_table('progress_course'))
