"""Notifications tables: notifications (unique per source and user), broadcasts, per-kind
preferences, the email outbox. (created_at defaults are the models' utcnow.)"""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Broadcast(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        audience = CharField(max_length=10)
        target = CharField(max_length=40, default='')
        kind = CharField(max_length=40, default='announcement')
        title = CharField(max_length=200)
        body = TextField(default='')
        data = JSONField(default=dict)
        created_by = IntegerField()
        status = CharField(max_length=10, default='queued')
        recipients = IntegerField(default=0)
        created_at = UTCDateTimeField()
        finished_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'notifications_broadcast'
    db.create_tables([Broadcast])

    class Email(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        user_id = IntegerField()
        notification_id = IntegerField(null=True)
        mode = CharField(max_length=10)
        status = CharField(max_length=10, default='pending')
        attempts = IntegerField(default=0)
        error = TextField(default='')
        created_at = UTCDateTimeField()
        sent_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'notifications_email'
            indexes = ((('tenant', 'status', 'mode', 'id'), False), (('tenant', 'status', 'sent_at'), False), (('tenant', 'notification_id'), True))
    db.create_tables([Email])

    class Notification(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        user_id = IntegerField()
        kind = CharField(max_length=40)
        title = CharField(max_length=200)
        body = TextField(default='')
        data = JSONField(default=dict)
        source = CharField(null=True, max_length=80)
        read_at = UTCDateTimeField(null=True)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'notifications_notification'
            indexes = ((('tenant', 'user_id', 'id'), False), (('tenant', 'source', 'user_id'), True))
    db.create_tables([Notification])

    class Preference(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        user_id = IntegerField()
        kind = CharField(max_length=40)
        channel = CharField(max_length=10)
        class Meta:
            database = db
            table_name = 'notifications_preference'
            indexes = ((('tenant', 'user_id', 'kind'), True),)
    db.create_tables([Preference])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('notifications_preference'))
    migrator.migrate(migrator.drop_table('notifications_notification'))
    migrator.migrate(migrator.drop_table('notifications_email'))
    migrator.migrate(migrator.drop_table('notifications_broadcast'))
