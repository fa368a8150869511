"""Progress: one row per video mark (25, 50, 75, 100 %) a learner reached in a module, unique
per (tenant, user, module, mark): what makes progress.video_progressed.v1 exactly-once."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class VideoMilestone(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        user_id = IntegerField()
        milestone = SmallIntegerField()
        percent = FloatField()
        reached_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'progress_video_milestone'
            legacy_table_names = False
            indexes = ((('tenant', 'user_id', 'module_id', 'milestone'), True),)
    db.create_tables([VideoMilestone])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('progress_video_milestone'))
