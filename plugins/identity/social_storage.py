"""Peewee storage for social-auth-core 7 on learnplat's tenant-scoped tables.

social-auth-core keeps four kinds of rows: links between a local user and a provider identity
(UserSocialAuth), one-use values (Nonce: core 7 stores the OAuth2 ``state`` there and
``consume()``s it on the callback), OpenID/OIDC associations (the OIDC nonce) and e-mail codes and
partial pipelines. All of them live on ``TenantModel``, so every query is scoped to the request's
school and unique keys are per school: the same Google ``sub`` may hold two accounts in two
schools. Modelled on social_core's own test models (core 7 API); the PyPI peewee storage package
predates ``consume``/``migrate_social_auth`` and does not fit.

Mixins declare ``get``/``delete`` with their own meanings, shadowing peewee's: those classes
override them explicitly and never rely on ``delete_instance()`` (mypy sees the clash with
peewee's ``Model.get``/``delete``: their override ignores say "social_core's, see top").
"""

from __future__ import annotations

import base64
from typing import Any

import peewee
from social_core.identifiers import identifier_matches
from social_core.storage import (
    AssociationMixin,
    BaseStorage,
    CodeMixin,
    NonceMixin,
    PartialMixin,
    UserMixin,
)

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, current_tenant, utcnow

from .models import User


def _scoped_delete(model: type[TenantModel]) -> peewee.ModelDelete:
    # peewee.ModelDelete, not model.delete(): the mixins redefine delete().
    return peewee.ModelDelete(model).where(model.tenant == current_tenant().id)


class UserSocialAuth(TenantModel, UserMixin):
    """A local user's link to a provider identity (provider, uid)."""

    user = peewee.ForeignKeyField(User, backref="social_auth", on_delete="CASCADE")
    provider = peewee.CharField(max_length=32)
    uid = peewee.CharField(max_length=255)
    id_key = peewee.CharField(max_length=64, default="")
    extra_data = JSONField(default=dict)
    created = UTCDateTimeField(default=utcnow)
    modified = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "identity_social_auth"
        indexes = ((("tenant", "provider", "uid"), True),)

    def set_extra_data(self, extra_data: dict[str, Any] | None = None) -> bool:
        # core's load_extra_data step never calls save(): persist here.
        changed = super().set_extra_data(extra_data)
        if changed:
            self.modified = utcnow()
            self.save()
        return changed

    @classmethod
    def changed(cls, user: Any) -> None:
        user.save()

    @classmethod
    def get_username(cls, user: Any) -> str:
        return str(user.email)

    @classmethod
    def user_model(cls) -> type[User]:
        return User

    @classmethod
    def username_max_length(cls) -> int:
        return 254

    @classmethod
    def allowed_to_disconnect(cls, user: Any, backend_name: str,
                              association_id: Any = None) -> bool:
        # Never strand a user without a way to log in.
        others = cls.select().where(cls.user == user)
        others = (others.where(cls.id != association_id) if association_id
                  else others.where(cls.provider != backend_name))
        return bool(user.password_hash) or others.exists()

    @classmethod
    def disconnect(cls, entry: Any) -> None:
        entry.delete_instance()

    @classmethod
    def user_exists(cls, *args: Any, **kwargs: Any) -> bool:
        query = User.select()
        for name, value in kwargs.items():
            if name == "username":
                name = "email"
            query = query.where(getattr(User, name) == value)
        return query.exists()

    @classmethod
    def create_user(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("learnplat creates OAuth users in its own pipeline step")

    @classmethod
    def get_user(cls, pk: Any) -> Any:
        return User.select().where(User.id == pk).first()

    @classmethod
    def get_users_by_email(cls, email: str) -> list[Any]:
        return list(User.select().where(User.email == email.strip().lower()))

    @classmethod
    def get_social_auth(cls, provider: str, uid: str, id_key: str | None = None) -> Any:
        query = cls.select().where(cls.provider == provider, cls.uid == str(uid))
        if id_key is not None:
            query = query.where(cls.id_key == id_key)
        return query.first()

    @classmethod
    def get_social_auth_by_extra_data(cls, provider: str, key: str, value: str,
                                      id_key: str = "") -> Any:
        rows = cls.select().where(cls.provider == provider, cls.id_key == id_key)
        matches = [r for r in rows if str(r.extra_data.get(key)) == value]
        if len(matches) > 1:
            raise ValueError("several social-auth links matched")
        return matches[0] if matches else None

    @classmethod
    def get_social_auth_for_user(cls, user: Any, provider: str | None = None,
                                 id: int | None = None) -> list[Any]:
        query = cls.select().where(cls.user == user)
        if provider:
            query = query.where(cls.provider == provider)
        if id:
            query = query.where(cls.id == id)
        return list(query)

    @classmethod
    def create_social_auth(cls, user: Any, uid: str, provider: str, id_key: str = "") -> Any:
        return cls.create(user=user, uid=str(uid), provider=provider, id_key=id_key)

    @classmethod
    def migrate_social_auth(cls, social: Any, uid: str, id_key: str, *,
                            evidence_key: str | None = None) -> Any:
        fresh = cls.select().where(cls.id == social.id).first()
        if fresh is None:
            raise ValueError("social-auth link vanished")
        if evidence_key is not None and not identifier_matches(
                fresh.extra_data.get(evidence_key), uid):
            raise ValueError("identifier evidence changed during migration")
        clash = cls.get_social_auth(fresh.provider, uid)
        if clash is not None and clash.id != fresh.id:
            raise ValueError("social-auth identifier migration conflict")
        fresh.uid, fresh.id_key = uid, id_key
        fresh.save()
        return fresh


class Nonce(TenantModel, NonceMixin):
    """One-use values; core 7 records the OAuth2 state here (use at start, consume on callback)."""

    server_url = peewee.CharField(max_length=255)
    timestamp = peewee.IntegerField()
    salt = peewee.CharField(max_length=128)

    class Meta:
        table_name = "identity_social_nonce"
        indexes = ((("tenant", "server_url", "timestamp", "salt"), True),)

    @classmethod
    def use(cls, server_url: str, timestamp: Any, salt: str) -> Any:
        try:
            with cls._meta.database.atomic():
                return cls.create(server_url=server_url, timestamp=timestamp, salt=salt)
        except peewee.IntegrityError:
            return None  # already used: the caller picks another value

    @classmethod
    def get(cls, server_url: str, salt: str) -> Any:
        return cls.select().where(cls.server_url == server_url, cls.salt == salt).first()

    @classmethod
    def delete(cls, nonce: Any) -> None:  # type: ignore[override]  # social_core's, see top
        _scoped_delete(cls).where(cls.id == nonce.id).execute()

    @classmethod
    def consume(cls, server_url: str, timestamp: int, salt: str) -> bool:
        # One DELETE is atomic: of two racing callbacks, exactly one removes the row.
        query = _scoped_delete(cls).where(cls.server_url == server_url,
                                          cls.timestamp == timestamp, cls.salt == salt)
        return query.execute() == 1

    @classmethod
    def burn(cls, salt: str) -> int:
        """Remove a state whatever its timestamp (after a failed callback)."""
        return _scoped_delete(cls).where(cls.salt == salt).execute()

    @classmethod
    def purge(cls, older_than: int) -> int:
        return _scoped_delete(cls).where(cls.timestamp < older_than).execute()


class Association(TenantModel, AssociationMixin):
    """OpenID associations; the OIDC backend keeps its nonce here."""

    server_url = peewee.CharField(max_length=255)
    handle = peewee.CharField(max_length=255)
    secret = peewee.CharField(max_length=255)  # base64
    issued = peewee.IntegerField()
    lifetime = peewee.IntegerField()
    assoc_type = peewee.CharField(max_length=64)

    class Meta:
        table_name = "identity_social_association"
        indexes = ((("tenant", "server_url", "handle"), True),)

    @classmethod
    def store(cls, server_url: str, association: Any) -> None:
        row = (cls.select().where(cls.server_url == server_url,
                                  cls.handle == association.handle).first()
               or cls(server_url=server_url, handle=association.handle))
        row.secret = base64.encodebytes(association.secret).decode()
        row.issued = association.issued
        row.lifetime = association.lifetime
        row.assoc_type = association.assoc_type
        row.save()

    @classmethod
    def get(cls, server_url: str | None = None,  # type: ignore[override]  # social_core's, see top
            handle: str | None = None) -> list[Any]:
        query = cls.select()
        if server_url is not None:
            query = query.where(cls.server_url == server_url)
        if handle is not None:
            query = query.where(cls.handle == handle)
        return list(query)

    @classmethod
    def remove(cls, ids_to_delete: list[Any]) -> None:
        _scoped_delete(cls).where(cls.id.in_(list(ids_to_delete))).execute()


class Code(TenantModel, CodeMixin):
    """E-mail validation codes (only with social_core's mail_validation step; unused today)."""

    email = peewee.CharField(max_length=254)
    code = peewee.CharField(max_length=32)
    verified = peewee.BooleanField(default=False)
    timestamp = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "identity_social_code"
        indexes = ((("tenant", "code"), True),)

    @classmethod
    def get_code(cls, code: str) -> Any:
        return cls.select().where(cls.code == code).first()


class Partial(TenantModel, PartialMixin):
    """Paused pipelines (partial steps; unused today, required by the storage API)."""

    token = peewee.CharField(max_length=32)
    next_step = peewee.IntegerField()
    backend = peewee.CharField(max_length=32)
    data = JSONField(default=dict)
    timestamp = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "identity_social_partial"
        indexes = ((("tenant", "token"), True),)

    @classmethod
    def load(cls, token: str) -> Any:
        return cls.select().where(cls.token == token).first()

    @classmethod
    def destroy(cls, token: str) -> None:
        _scoped_delete(cls).where(cls.token == token).execute()


class PeeweeStorage(BaseStorage):
    """What social_core reaches as ``strategy.storage``."""

    user = UserSocialAuth
    nonce = Nonce
    association = Association
    code = Code
    partial = Partial

    @classmethod
    def is_integrity_error(cls, exception: BaseException) -> bool:
        return isinstance(exception, peewee.IntegrityError)


SOCIAL_MODELS = (UserSocialAuth, Nonce, Association, Code, Partial)
