from peewee import *
from learnplat.plugin import JSONField, UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class LtiScoreToken(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        token_hash = CharField(max_length=64, unique=True)
        tool_id = IntegerField(index=True)
        scopes = JSONField(default=list)
        created_at = UTCDateTimeField()
        expires_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_access_token'
            legacy_table_names = False
    db.create_tables([LtiScoreToken])

    class LtiScoreAssertion(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        tool_id = IntegerField()
        jti = CharField(max_length=255)
        expires_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_assertion_jti'
            legacy_table_names = False
            indexes = ((('tool_id', 'jti'), True),)
    db.create_tables([LtiScoreAssertion])

    class LtiScoreLineItem(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField(null=True)
        tool_id = IntegerField(null=True)
        label = CharField(max_length=255)
        score_maximum = FloatField()
        resource_id = CharField(max_length=255, default='')
        tag = CharField(max_length=255, default='')
        start_at = UTCDateTimeField(null=True)
        end_at = UTCDateTimeField(null=True)
        is_default = BooleanField(default=False)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_lineitem'
            legacy_table_names = False
            indexes = ((('tenant', 'course_id'), False),)
    db.create_tables([LtiScoreLineItem])

    class LtiScoreEntry(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        lineitem = ForeignKeyField(LtiScoreLineItem, field=LtiScoreLineItem.id,
                                   on_delete='CASCADE')
        course_id = IntegerField()
        module_id = IntegerField(null=True)
        user_id = IntegerField()
        tool_id = IntegerField()
        score_given = FloatField(null=True)
        score_maximum = FloatField(null=True)
        activity_progress = CharField(max_length=20)
        grading_progress = CharField(max_length=20)
        comment = TextField(default='')
        timestamp = UTCDateTimeField()
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'lti_score'
            legacy_table_names = False
            indexes = ((('lineitem', 'user_id', 'timestamp'), False),
                       (('tenant', 'course_id', 'module_id'), False))
    db.create_tables([LtiScoreEntry])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('lti_score'))
    migrator.migrate(migrator.drop_table('lti_lineitem'))
    migrator.migrate(migrator.drop_table('lti_assertion_jti'))
    migrator.migrate(migrator.drop_table('lti_access_token'))
