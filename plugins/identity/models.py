"""Identity tables: users, their refresh tokens, per-tenant signing keys, the audit log."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow

ROLES = ("admin", "instructor", "student")


class User(TenantModel):
    email = peewee.CharField(max_length=254)
    name = peewee.CharField(max_length=200, default="")
    password_hash = peewee.CharField(max_length=255, null=True)  # None: OAuth-only account
    role = peewee.CharField(max_length=20, default="student", index=True)
    active = peewee.BooleanField(default=True)
    # Bumped by deactivation and role changes: tokens carrying an older version stop working.
    token_version = peewee.IntegerField(default=0)
    email_verified = peewee.BooleanField(default=False)
    bio = peewee.TextField(default="")
    avatar_url = peewee.CharField(max_length=500, default="")
    failed_logins = peewee.IntegerField(default=0)
    locked_until = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "identity_user"
        indexes = ((("tenant", "email"), True),)

    # What social-auth-core asks of a user object.
    is_authenticated = True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def username(self) -> str:
        # The account's name in social-auth-core's eyes (its UserProtocol) is the e-mail
        # address, as UserSocialAuth.get_username says.
        return str(self.email)


class RefreshToken(TenantModel):
    """Opaque refresh tokens, stored hashed. A family is one login's chain of rotations."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", lazy_load=False)
    family = peewee.CharField(max_length=64, index=True)
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "identity_refresh_token"


class SigningKey(TenantModel):
    """A tenant's Ed25519 key; the private half is encrypted with the app secret."""

    kid = peewee.CharField(max_length=64, unique=True)
    private_key = peewee.TextField()
    public_jwk = JSONField()
    created_at = UTCDateTimeField(default=utcnow)
    retired_at = UTCDateTimeField(null=True)  # still verifies until tokens it signed expire

    class Meta:
        table_name = "identity_signing_key"


class AuditEntry(TenantModel):
    action = peewee.CharField(max_length=60, index=True)
    actor_id = peewee.IntegerField(null=True)
    subject_id = peewee.IntegerField(null=True)
    ip = peewee.CharField(max_length=64, default="")
    detail = JSONField(default=dict)
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "identity_audit"


MODELS = (User, RefreshToken, SigningKey, AuditEntry)
