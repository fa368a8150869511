"""Webhooks tables: endpoints and their signing secrets (encrypted)."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Endpoint(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        url = CharField(max_length=2000)
        description = CharField(max_length=500, default='')
        event_types = JSONField(default=list)
        enabled = BooleanField(default=True)
        disabled_reason = CharField(max_length=500, null=True)
        disabled_at = UTCDateTimeField(null=True)
        created_by = IntegerField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'webhooks_endpoint'
    db.create_tables([Endpoint])

    class EndpointSecret(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        endpoint_id = IntegerField()
        secret = TextField()
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'webhooks_secret'
            indexes = ((('tenant', 'endpoint_id'), False),)
    db.create_tables([EndpointSecret])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('webhooks_secret'))
    migrator.migrate(migrator.drop_table('webhooks_endpoint'))
