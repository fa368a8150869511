"""sample: the bookmark table."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Bookmark(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE', column_name='tenant_id')
        url = CharField(max_length=500)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'sample_bookmark'
    db.create_tables([Bookmark])
