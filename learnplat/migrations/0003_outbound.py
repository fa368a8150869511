"""The delivery engine's tables (learnplat.outbound): destinations, queued messages, attempts."""
from peewee import *
from learnplat.models import JSONField
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class OutboundDestination(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE',
                                 column_name='tenant_id', index=False)
        sink = CharField(max_length=60)
        ref = CharField(max_length=200)
        next_due_at = UTCDateTimeField(null=True, index=True)
        lease_until = UTCDateTimeField(null=True)
        leased_by = CharField(max_length=200, null=True)
        ticket = BigIntegerField(null=True)
        consecutive_failures = IntegerField(default=0)
        failing_since = UTCDateTimeField(null=True)
        open_until = UTCDateTimeField(null=True)
        last_success_at = UTCDateTimeField(null=True)
        disabled_at = UTCDateTimeField(null=True)
        disabled_reason = TextField(null=True)
        class Meta:
            database = db
            table_name = 'learnplat_outbound_destination'
            legacy_table_names = False
            indexes = ((('tenant', 'sink', 'ref'), True),)
    db.create_tables([OutboundDestination])

    class OutboundMessage(Model):
        id = BigAutoField()
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE',
                                 column_name='tenant_id')
        destination = ForeignKeyField(OutboundDestination, on_delete='CASCADE', index=False)
        key = CharField(max_length=200)
        event_id = BigIntegerField(null=True)
        event_type = CharField(max_length=120, default='')
        payload = JSONField(null=True)
        status = CharField(max_length=10, default='pending')
        attempts = IntegerField(default=0)
        retry_base = IntegerField(default=0)
        created_at = UTCDateTimeField(index=True)
        next_attempt_at = UTCDateTimeField(null=True)
        last_attempt_at = UTCDateTimeField(null=True)
        delivered_at = UTCDateTimeField(null=True)
        last_status = IntegerField(null=True)
        last_error = TextField(null=True)
        class Meta:
            database = db
            table_name = 'learnplat_outbound_message'
            legacy_table_names = False
            indexes = (
                (('destination', 'key'), True),
                (('destination', 'status', 'next_attempt_at'), False),
            )
    db.create_tables([OutboundMessage])

    class OutboundAttempt(Model):
        id = BigAutoField()
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE',
                                 column_name='tenant_id')
        message = ForeignKeyField(OutboundMessage, on_delete='CASCADE')
        at = UTCDateTimeField()
        status = IntegerField(null=True)
        latency_ms = FloatField(default=0)
        answer = TextField(default='')
        error = TextField(null=True)
        class Meta:
            database = db
            table_name = 'learnplat_outbound_attempt'
            legacy_table_names = False
    db.create_tables([OutboundAttempt])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('learnplat_outbound_attempt'))
    migrator.migrate(migrator.drop_table('learnplat_outbound_message'))
    migrator.migrate(migrator.drop_table('learnplat_outbound_destination'))
