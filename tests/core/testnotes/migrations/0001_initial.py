"""testnotes: the note table."""
from peewee import *
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Note(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE', column_name='tenant_id')
        title = CharField(max_length=100)
        body = TextField(default='')
        author = IntegerField(null=True)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'testnotes_note'
    db.create_tables([Note])
