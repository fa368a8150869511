"""Certificate tables: one certificate per learner and course, the tenant's credential-signing
keys, course-wide regeneration jobs, and the one table that is not tenant-owned: the public-id
index that lets the public verification page find a certificate's school."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow
from learnplat.plugin import (
    SharedModel as BaseModel,  # not in learnplat.plugin: see CertificateIndex
)


class Certificate(TenantModel):
    """A learner's certificate for a course. The unique (tenant, course_id, user_id) index is
    what makes issuing exactly-once: a duplicate completion event or a second worker finds the
    row instead of making another. `id` doubles as the certificate's index in the tenant's
    revocation status list (unique, never reused)."""

    public_id = peewee.CharField(max_length=32, unique=True)
    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField(index=True)
    status = peewee.CharField(max_length=10, default="pending")  # pending | issued | revoked
    # As printed on the PDF and in the credential (names can change later; the paper cannot).
    learner_name = peewee.CharField(max_length=300, default="")
    course_title = peewee.CharField(max_length=300, default="")
    instructor_name = peewee.CharField(max_length=300, default="")
    issued_at = UTCDateTimeField(null=True)
    revision = peewee.IntegerField(default=0)  # bumped by each (re)generation of the PDF
    pdf_key = peewee.CharField(max_length=200, default="")
    credential = peewee.TextField(default="")  # the VC-JWT
    revoked_at = UTCDateTimeField(null=True)
    revoked_reason = peewee.CharField(max_length=500, default="")
    revoked_by = peewee.IntegerField(null=True)
    requested_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "certificates_certificate"
        indexes = ((("tenant", "course_id", "user_id"), True),)


class CertificateIndex(BaseModel):
    """public id -> tenant, for GET /certificates/{id}/verify, which has no tenant (a phone
    scanning the QR code sends no X-Tenant). Not a TenantModel on purpose: PostgreSQL's row
    level security would hide every row from a request with no tenant. It holds no personal
    data, only which school issued an id."""

    public_id = peewee.CharField(max_length=32, primary_key=True)
    tenant_id = peewee.IntegerField()

    class Meta:
        table_name = "certificates_public_id"


class CredentialKey(TenantModel):
    """A tenant's Ed25519 key for signing credentials (not the identity plugin's token keys:
    rotating one never touches the other). The private half is encrypted with a key derived
    from app.secret_key. Retired keys are kept and published, so credentials they signed stay
    verifiable."""

    kid = peewee.CharField(max_length=64, unique=True)
    private_key = peewee.TextField()
    public_jwk = JSONField()
    created_at = UTCDateTimeField(default=utcnow)
    retired_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "certificates_credential_key"


class RegenerationJob(TenantModel):
    """Re-rendering every issued certificate of a course (after a template change)."""

    course_id = peewee.IntegerField()
    status = peewee.CharField(max_length=10, default="queued")  # queued | running | done
    total = peewee.IntegerField(default=0)
    done = peewee.IntegerField(default=0)
    requested_by = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "certificates_regeneration_job"


class CertificateTemplate(TenantModel):
    """A school's certificate design: layout and colours (see render.Template), and the keys
    of its logo and signature images in storage. At most one row per tenant."""

    settings = JSONField(default=dict)
    logo_key = peewee.CharField(max_length=200, default="")
    signature_key = peewee.CharField(max_length=200, default="")
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "certificates_template"
        indexes = ((("tenant",), True),)


MODELS = (Certificate, CertificateIndex, CredentialKey, RegenerationJob, CertificateTemplate)
