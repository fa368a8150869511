"""xAPI tables: a school's learning record store (one per school)."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class LrsConfig(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        endpoint = CharField(max_length=2000)
        key = CharField(max_length=300)
        secret = TextField()
        actor_mode = CharField(max_length=20, default='account')
        home_page = CharField(max_length=2000)
        language = CharField(max_length=35, default='en-US')
        enabled = BooleanField(default=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'xapi_lrs'
            legacy_table_names = False
            indexes = ((('tenant',), True),)
    db.create_tables([LrsConfig])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('xapi_lrs'))
