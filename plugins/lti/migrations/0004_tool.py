"""LTI as tool: OIDC logins in flight (state, nonce) and Deep Linking requests being answered."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class LtiToolLogin(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        state = CharField(max_length=64, unique=True)
        nonce = CharField(max_length=64)
        platform_id = IntegerField()
        target_link_uri = CharField(max_length=2000, default='')
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'lti_tool_login'
            legacy_table_names = False
            indexes = ((('tenant', 'nonce'), False), (('tenant', 'expires_at'), False))
    db.create_tables([LtiToolLogin])

    class LtiToolDeepLink(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        ticket = CharField(max_length=64, unique=True)
        platform_id = IntegerField()
        deployment_id = CharField(max_length=255)
        user_id = IntegerField(null=True)
        return_url = CharField(max_length=2000)
        data = TextField(null=True)
        accept_multiple = BooleanField(default=False)
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'lti_tool_deep_link'
            legacy_table_names = False
    db.create_tables([LtiToolDeepLink])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('lti_tool_deep_link'))
    migrator.migrate(migrator.drop_table('lti_tool_login'))
