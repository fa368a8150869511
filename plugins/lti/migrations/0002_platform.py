"""LTI as platform: lti modules' tools, launches in flight, accepted Deep Linking nonces."""
from peewee import *
from learnplat.plugin import JSONField, UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class LtiPlatformModuleLink(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField()
        tool_id = IntegerField(index=True)
        target_link_uri = CharField(max_length=2000, default='')
        custom = JSONField(default=dict)
        max_score = FloatField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_module_link'
            legacy_table_names = False
            indexes = ((('tenant', 'module_id'), True), (('tenant', 'course_id'), False))
    db.create_tables([LtiPlatformModuleLink])

    class LtiPlatformLaunch(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        launch_id = CharField(max_length=64, unique=True)
        message_hint = CharField(max_length=64)
        user_id = IntegerField()
        tool_id = IntegerField(index=True)
        course_id = IntegerField()
        module_id = IntegerField(null=True)
        deep_linking = BooleanField(default=False)
        target_link_uri = CharField(max_length=2000)
        dl_data = TextField(default='')
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        returned_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'lti_launch'
            legacy_table_names = False
            indexes = ((('tenant', 'expires_at'), False),)
    db.create_tables([LtiPlatformLaunch])

    class LtiPlatformNonce(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        tool_id = IntegerField()
        nonce = CharField(max_length=255)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_platform_nonce'
            legacy_table_names = False
            indexes = ((('tool_id', 'nonce'), True),)
    db.create_tables([LtiPlatformNonce])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('lti_platform_nonce'))
    migrator.migrate(migrator.drop_table('lti_launch'))
    migrator.migrate(migrator.drop_table('lti_module_link'))
