"""Media tables: one row per stored object (module videos, attached files)."""
from peewee import *
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

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
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'media_object'
            indexes = ((('tenant', 'course_id', 'module_id', 'kind'), False), (('tenant', 'key'), True))
    db.create_tables([MediaObject])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('media_object'))
