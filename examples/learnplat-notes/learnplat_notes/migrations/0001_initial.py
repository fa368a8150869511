"""notes: the note table (written by `learnplat makemigrations notes`)."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Note(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE', column_name='tenant_id')
        title = CharField(max_length=200)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'notes_note'
    db.create_tables([Note])
