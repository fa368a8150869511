"""Certificates tables: certificates, the public-id index, credential keys, regeneration
jobs and templates."""
from peewee import *
from learnplat.plugin import JSONField
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Certificate(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        public_id = CharField(unique=True, max_length=32)
        course_id = IntegerField()
        user_id = IntegerField(index=True)
        status = CharField(max_length=10, default='pending')
        learner_name = CharField(max_length=300, default='')
        course_title = CharField(max_length=300, default='')
        instructor_name = CharField(max_length=300, default='')
        issued_at = UTCDateTimeField(null=True)
        revision = IntegerField(default=0)
        pdf_key = CharField(max_length=200, default='')
        credential = TextField(default='')
        revoked_at = UTCDateTimeField(null=True)
        revoked_reason = CharField(max_length=500, default='')
        revoked_by = IntegerField(null=True)
        requested_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'certificates_certificate'
            indexes = ((('tenant', 'course_id', 'user_id'), True),)
    db.create_tables([Certificate])

    class CertificateIndex(Model):
        public_id = CharField(primary_key=True, max_length=32)
        tenant_id = IntegerField()
        class Meta:
            database = db
            table_name = 'certificates_public_id'
    db.create_tables([CertificateIndex])

    class CertificateTemplate(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        settings = JSONField(default=dict)
        logo_key = CharField(max_length=200, default='')
        signature_key = CharField(max_length=200, default='')
        updated_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = 'certificates_template'
            indexes = ((('tenant',), True),)
    db.create_tables([CertificateTemplate])

    class CredentialKey(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        kid = CharField(unique=True, max_length=64)
        private_key = TextField()
        public_jwk = JSONField()
        created_at = UTCDateTimeField()
        retired_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'certificates_credential_key'
    db.create_tables([CredentialKey])

    class RegenerationJob(Model):
        tenant = ForeignKeyField(Tenant, field=Tenant.id, on_delete='CASCADE')
        course_id = IntegerField()
        status = CharField(max_length=10, default='queued')
        total = IntegerField(default=0)
        done = IntegerField(default=0)
        requested_by = IntegerField(null=True)
        created_at = UTCDateTimeField()
        finished_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'certificates_regeneration_job'
    db.create_tables([RegenerationJob])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('certificates_regeneration_job'))
    migrator.migrate(migrator.drop_table('certificates_credential_key'))
    migrator.migrate(migrator.drop_table('certificates_template'))
    migrator.migrate(migrator.drop_table('certificates_public_id'))
    migrator.migrate(migrator.drop_table('certificates_certificate'))
