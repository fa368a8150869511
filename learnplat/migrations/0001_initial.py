"""Core tables: tenants and their domains, the event outbox and its deliveries."""
from peewee import *
from learnplat.models import JSONField
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Event(Model):
        id = BigAutoField()
        tenant_id = IntegerField(index=True)
        name = CharField(max_length=120)
        payload = JSONField(default=dict)
        created_at = UTCDateTimeField()
        status = CharField(index=True, max_length=10, default='pending')
        attempts = IntegerField(default=0)
        next_attempt_at = UTCDateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'learnplat_event'
    db.create_tables([Event])

    class EventDelivery(Model):
        event = ForeignKeyField(Event, on_delete='CASCADE')
        handler = CharField(max_length=200)
        status = CharField(max_length=10, default='pending')
        attempts = IntegerField(default=0)
        last_error = TextField(null=True)
        delivered_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'learnplat_event_delivery'
            indexes = ((('event', 'handler'), True),)
    db.create_tables([EventDelivery])

    class Tenant(Model):
        slug = CharField(unique=True, max_length=63)
        name = CharField(max_length=200)
        enabled = BooleanField(default=True)
        disabled_plugins = JSONField(default=list)
        settings = JSONField(default=dict)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'learnplat_tenant'
    db.create_tables([Tenant])

    class TenantDomain(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE')
        domain = CharField(unique=True, max_length=253)
        class Meta:
            database = db
            table_name = 'learnplat_tenant_domain'
    db.create_tables([TenantDomain])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('learnplat_tenant_domain'))
    migrator.migrate(migrator.drop_table('learnplat_tenant'))
    migrator.migrate(migrator.drop_table('learnplat_event_delivery'))
    migrator.migrate(migrator.drop_table('learnplat_event'))
