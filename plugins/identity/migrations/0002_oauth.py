"""Identity: social-auth-core tables for OAuth sign-in (links, state nonces, associations,
codes, partial pipelines), unique per tenant. Timestamps get their defaults from the models."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class User(Model):
        class Meta:
            database = db
            table_name = 'identity_user'

    class Association(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        server_url = CharField()
        handle = CharField()
        secret = CharField()
        issued = IntegerField()
        lifetime = IntegerField()
        assoc_type = CharField(max_length=64)
        class Meta:
            database = db
            table_name = 'identity_social_association'
            indexes = ((('tenant', 'server_url', 'handle'), True),)
    db.create_tables([Association])

    class Code(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        email = CharField(max_length=254)
        code = CharField(max_length=32)
        verified = BooleanField(default=False)
        timestamp = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'identity_social_code'
            indexes = ((('tenant', 'code'), True),)
    db.create_tables([Code])

    class Nonce(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        server_url = CharField()
        timestamp = IntegerField()
        salt = CharField(max_length=128)
        class Meta:
            database = db
            table_name = 'identity_social_nonce'
            indexes = ((('tenant', 'server_url', 'timestamp', 'salt'), True),)
    db.create_tables([Nonce])

    class Partial(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        token = CharField(max_length=32)
        next_step = IntegerField()
        backend = CharField(max_length=32)
        data = JSONField(default=dict)
        timestamp = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'identity_social_partial'
            indexes = ((('tenant', 'token'), True),)
    db.create_tables([Partial])

    class UserSocialAuth(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        provider = CharField(max_length=32)
        uid = CharField()
        id_key = CharField(max_length=64, default='')
        extra_data = JSONField(default=dict)
        created = UTCDateTimeField()
        modified = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'identity_social_auth'
            indexes = ((('tenant', 'provider', 'uid'), True),)
    db.create_tables([UserSocialAuth])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('identity_social_auth'))
    migrator.migrate(migrator.drop_table('identity_social_partial'))
    migrator.migrate(migrator.drop_table('identity_social_nonce'))
    migrator.migrate(migrator.drop_table('identity_social_code'))
    migrator.migrate(migrator.drop_table('identity_social_association'))
