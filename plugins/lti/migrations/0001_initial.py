"""LTI tables both roles share: the school's keys, tool and platform registrations, linked
accounts and grade targets."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class PlatformRegistration(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        name = CharField(max_length=200)
        issuer = CharField(max_length=2000)
        client_id = CharField(max_length=200)
        deployment_ids = JSONField(default=list)
        auth_login_url = CharField(max_length=2000)
        token_url = CharField(max_length=2000)
        jwks_url = CharField(max_length=2000)
        landing_url = CharField(max_length=2000, default='')
        enabled = BooleanField(default=True)
        created_by = IntegerField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_platform'
            legacy_table_names = False
            indexes = ((('tenant', 'issuer', 'client_id'), True),)
    db.create_tables([PlatformRegistration])

    class GradeTarget(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        platform = ForeignKeyField(PlatformRegistration, on_delete='CASCADE')
        user_id = IntegerField()
        sub = CharField()
        course_id = IntegerField()
        module_id = IntegerField(null=True)
        resource_link_id = CharField()
        deployment_id = CharField()
        lineitem_url = CharField(max_length=2000, default='')
        lineitems_url = CharField(max_length=2000, default='')
        scopes = JSONField(default=list)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_grade_target'
            legacy_table_names = False
            indexes = ((('platform', 'resource_link_id', 'user_id'), True), (('course_id', 'user_id'), False))
    db.create_tables([GradeTarget])

    class LtiKey(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        kid = CharField(unique=True, max_length=80)
        private_key = TextField()
        public_jwk = JSONField()
        created_at = UTCDateTimeField()
        retired_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'lti_key'
            legacy_table_names = False
    db.create_tables([LtiKey])

    class PlatformAccount(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        platform = ForeignKeyField(PlatformRegistration, on_delete='CASCADE')
        sub = CharField()
        user_id = IntegerField(index=True)
        created_at = UTCDateTimeField()
        last_launch_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_platform_account'
            legacy_table_names = False
            indexes = ((('platform', 'sub'), True),)
    db.create_tables([PlatformAccount])

    class ToolRegistration(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        name = CharField(max_length=200)
        description = TextField(default='')
        client_id = CharField(max_length=200)
        deployment_ids = JSONField(default=list)
        login_url = CharField(max_length=2000)
        launch_url = CharField(max_length=2000)
        redirect_uris = JSONField(default=list)
        deep_linking_url = CharField(max_length=2000, default='')
        jwks_url = CharField(max_length=2000, default='')
        public_jwk = JSONField(null=True)
        scopes = JSONField(default=list)
        send_name = BooleanField(default=True)
        send_email = BooleanField(default=True)
        custom = JSONField(default=dict)
        enabled = BooleanField(default=True)
        created_by = IntegerField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_tool'
            legacy_table_names = False
            indexes = ((('tenant', 'client_id'), True),)
    db.create_tables([ToolRegistration])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('lti_tool'))
    migrator.migrate(migrator.drop_table('lti_platform_account'))
    migrator.migrate(migrator.drop_table('lti_key'))
    migrator.migrate(migrator.drop_table('lti_grade_target'))
    migrator.migrate(migrator.drop_table('lti_platform'))
