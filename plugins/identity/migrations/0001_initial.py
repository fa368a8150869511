"""Identity tables: users, refresh tokens, signing keys, audit log."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class AuditEntry(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        action = CharField(index=True, max_length=60)
        actor_id = IntegerField(null=True)
        subject_id = IntegerField(null=True)
        ip = CharField(max_length=64, default='')
        detail = JSONField(default=dict)
        created_at = UTCDateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'identity_audit'
    db.create_tables([AuditEntry])

    class User(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        email = CharField(max_length=254)
        name = CharField(max_length=200, default='')
        password_hash = CharField(null=True)
        role = CharField(index=True, max_length=20, default='student')
        active = BooleanField(default=True)
        token_version = IntegerField(default=0)
        email_verified = BooleanField(default=False)
        bio = TextField(default='')
        avatar_url = CharField(max_length=500, default='')
        failed_logins = IntegerField(default=0)
        locked_until = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'identity_user'
            indexes = ((('tenant', 'email'), True),)
    db.create_tables([User])

    class RefreshToken(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        family = CharField(index=True, max_length=64)
        token_hash = CharField(unique=True, max_length=64)
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        revoked_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'identity_refresh_token'
    db.create_tables([RefreshToken])

    class SigningKey(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        kid = CharField(unique=True, max_length=64)
        private_key = TextField()
        public_jwk = JSONField()
        created_at = UTCDateTimeField()
        retired_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'identity_signing_key'
    db.create_tables([SigningKey])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('identity_signing_key'))
    migrator.migrate(migrator.drop_table('identity_refresh_token'))
    migrator.migrate(migrator.drop_table('identity_user'))
    migrator.migrate(migrator.drop_table('identity_audit'))
