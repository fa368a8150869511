"""The stored first answers of POSTs sent with an Idempotency-Key (learnplat.idempotency)."""
from peewee import *
from learnplat.models import JSONField
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class IdempotentAnswer(Model):
        id = BigAutoField()
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        caller = CharField(max_length=80)
        key_hash = CharField(max_length=64)
        fingerprint = CharField(max_length=64)
        status = IntegerField()
        headers = JSONField(default=list)
        body = BlobField()
        created_at = UTCDateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'learnplat_idempotency'
            legacy_table_names = False
            indexes = ((('tenant', 'caller', 'key_hash'), True),)
    db.create_tables([IdempotentAnswer])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('learnplat_idempotency'))
