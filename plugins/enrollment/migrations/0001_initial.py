"""Enrollment tables: enrollments and per-course enrollment rules."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Enrollment(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE', index=True,
                                 column_name='tenant_id')
        course_id = IntegerField()
        user_id = IntegerField()
        status = CharField(max_length=10, default='active')
        source = CharField(max_length=10, default='self')
        enrolled_by = IntegerField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        dropped_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'enrollment_enrollment'
            indexes = ((('tenant', 'course_id', 'user_id'), True),
                       (('tenant', 'course_id', 'status', 'created_at'), False),
                       (('tenant', 'course_id', 'id'), False),
                       (('tenant', 'user_id', 'id'), False))
    db.create_tables([Enrollment])

    class EnrollmentRules(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE', index=True,
                                 column_name='tenant_id')
        course_id = IntegerField()
        cap = IntegerField(null=True)
        opens_at = UTCDateTimeField(null=True)
        closes_at = UTCDateTimeField(null=True)
        updated_at = UTCDateTimeField()
        updated_by = IntegerField(null=True)
        class Meta:
            database = db
            table_name = 'enrollment_rules'
            indexes = ((('tenant', 'course_id'), True),)
    db.create_tables([EnrollmentRules])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('enrollment_rules'))
    migrator.migrate(migrator.drop_table('enrollment_enrollment'))
