"""Identity service: accounts, logins, token pairs, revocation. Imports nothing from Falcon.

Other plugins reach it as ``runtime.service("identity")``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any

from learnplat import db
from learnplat.auth import Principal
from learnplat.errors import Conflict, NotFound, RateLimited, Unauthorized, ValidationFailed
from learnplat.models import utcnow
from learnplat.tenancy import current_tenant

from . import passwords
from .keys import KeyRing
from .models import ROLES, AuditEntry, RefreshToken, User
from .tokens import TokenCodec

if TYPE_CHECKING:
    from learnplat.runtime import Runtime

LOGIN_LIMIT_PER_IP = 20  # attempts per window
LOGIN_LIMIT_PER_ACCOUNT = 10
LIMIT_WINDOW = 300  # seconds
LOCK_AFTER_FAILURES = 5
LOCK_SECONDS = 900


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "name": user.name, "role": user.role,
        "active": user.active, "bio": user.bio, "avatar_url": user.avatar_url,
        "email_verified": user.email_verified, "created_at": user.created_at,
    }


class IdentityService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        auth = runtime.settings.auth
        self.keys = KeyRing(runtime.secret_key, auth.access_token_ttl)
        self.tokens = TokenCodec(self.keys, auth.issuer, auth.access_token_ttl)
        self.refresh_ttl = auth.refresh_token_ttl

    @property
    def kv(self) -> Any:
        return self.runtime.kv

    # -- accounts ----------------------------------------------------------------------------

    def create_user(self, email: str, password: str | None, name: str = "",
                    role: str = "student", email_verified: bool = False) -> User:
        email = normalize_email(email)
        if role not in ROLES:
            raise ValidationFailed.field("role", f"one of {', '.join(ROLES)}", "enum")
        if password is not None:
            passwords.check_policy(password, email)
        with db.transaction():
            if User.select().where(User.email == email).exists():
                raise Conflict("an account with this email exists", code="email_taken")
            user = User.create(
                email=email, name=name, role=role, email_verified=email_verified,
                password_hash=passwords.hash_password(password) if password else None,
            )
            self.audit("user.created", subject_id=user.id, detail={"role": role})
        return user

    def get_user(self, user_id: Any) -> User:
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    # -- logins ------------------------------------------------------------------------------

    def _limit(self, key: str, limit: int) -> None:
        count = self.kv.incr(f"rl:{current_tenant().id}:{key}", LIMIT_WINDOW)
        if count > limit:
            raise RateLimited(int(self.kv.ttl(f"rl:{current_tenant().id}:{key}") or LIMIT_WINDOW))

    def login(self, email: str, password: str, ip: str = "") -> dict[str, Any]:
        email = normalize_email(email)
        self._limit(f"login-ip:{ip}", LOGIN_LIMIT_PER_IP)
        self._limit(f"login-acct:{email}", LOGIN_LIMIT_PER_ACCOUNT)
        user = User.get_or_none(User.email == email)
        now = utcnow()
        locked = user is not None and (
            self.is_locked(user.id) or (user.locked_until is not None and user.locked_until > now))
        ok, new_hash = passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.active or locked:
            if user is not None and not ok:
                self._record_failure(user.id)
            self.audit("login.failed", subject_id=user.id if user else None, ip=ip,
                       detail={"email": email, "reason": "locked" if locked and ok else "bad"})
            db.keep_on_failure()
            raise Unauthorized("wrong email or password", code="bad_credentials")
        with db.transaction():
            changes: dict[Any, Any] = {User.failed_logins: 0, User.locked_until: None}
            if new_hash:
                changes[User.password_hash] = new_hash
            User.update(changes).where(User.id == user.id).execute()
            self.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip)
            return self.issue_pair(user)

    def _record_failure(self, user_id: int) -> None:
        key = f"fail:{current_tenant().id}:{user_id}"
        failures = self.kv.incr(key, LOCK_SECONDS)
        changes: dict[Any, Any] = {User.failed_logins: User.failed_logins + 1}
        if failures >= LOCK_AFTER_FAILURES:
            self.kv.set(f"lock:{current_tenant().id}:{user_id}", "1", LOCK_SECONDS)
            changes[User.locked_until] = utcnow() + dt.timedelta(seconds=LOCK_SECONDS)
            self.audit("user.locked", subject_id=user_id, detail={"failures": failures})
        with db.transaction():
            User.update(changes).where(User.id == user_id).execute()

    def is_locked(self, user_id: int) -> bool:
        return self.kv.get(f"lock:{current_tenant().id}:{user_id}") is not None

    def unlock(self, user_id: int) -> None:
        tid = current_tenant().id
        self.kv.delete(f"lock:{tid}:{user_id}")
        self.kv.delete(f"fail:{tid}:{user_id}")
        with db.transaction():
            User.update(failed_logins=0, locked_until=None).where(User.id == user_id).execute()
            self.audit("user.unlocked", subject_id=user_id)

    # -- tokens ------------------------------------------------------------------------------

    def issue_pair(self, user: User, family: str | None = None) -> dict[str, Any]:
        family = family or secrets.token_hex(16)
        refresh = secrets.token_urlsafe(32)
        RefreshToken.create(
            user=user.id, family=family, token_hash=_hash(refresh),
            expires_at=utcnow() + dt.timedelta(seconds=self.refresh_ttl),
        )
        access = self.tokens.issue(current_tenant(), user.id, user.role, user.token_version,
                                   family)
        return {"access_token": access.token, "refresh_token": refresh, "token_type": "Bearer",
                "expires_in": access.expires_in}

    def refresh(self, refresh_token: str, ip: str = "") -> dict[str, Any]:
        self._limit(f"refresh-ip:{ip}", LOGIN_LIMIT_PER_IP * 3)
        row = RefreshToken.get_or_none(RefreshToken.token_hash == _hash(refresh_token))
        if row is None:
            raise Unauthorized("unknown refresh token", code="bad_refresh_token")
        now = utcnow()
        if row.used_at is not None or row.revoked_at is not None:
            # A used token presented again: someone holds a stolen copy. End the whole family.
            self.revoke_family(row.family, reason="refresh_token_reuse")
            db.keep_on_failure()
            raise Unauthorized("refresh token already used; the session was ended",
                               code="refresh_token_reused")
        if row.expires_at <= now:
            raise Unauthorized("refresh token expired", code="bad_refresh_token")
        user = User.get_or_none(User.id == row.user_id)
        if user is None or not user.active:
            raise Unauthorized("account deactivated", code="bad_refresh_token")
        with db.transaction():
            claimed = (RefreshToken.update(used_at=now)
                       .where((RefreshToken.id == row.id) & RefreshToken.used_at.is_null())
                       .execute())
            if not claimed:  # lost a race with another use of the same token
                raise Unauthorized("refresh token already used", code="refresh_token_reused")
            return self.issue_pair(user, family=row.family)

    def revoke_family(self, family: str, reason: str) -> None:
        self.kv.set(f"fam:{current_tenant().id}:{family}", reason, self.refresh_ttl)
        with db.transaction():
            (RefreshToken.update(revoked_at=utcnow())
             .where((RefreshToken.family == family) & RefreshToken.revoked_at.is_null())
             .execute())
            self.audit("token_family.revoked", detail={"family": family, "reason": reason})

    def logout(self, principal: Principal) -> None:
        claims = principal.claims
        ttl = max(1, int(claims.get("exp", time.time()) - time.time()))
        self.kv.set(f"jti:{principal.tenant_id}:{claims['jti']}", "1", ttl)
        if fam := claims.get("fam"):
            self.kv.set(f"fam:{principal.tenant_id}:{fam}", "logout", ttl)
            with db.transaction():
                (RefreshToken.update(revoked_at=utcnow())
                 .where((RefreshToken.family == fam) & RefreshToken.revoked_at.is_null())
                 .execute())
        self.audit("logout", actor_id=principal.user_id, subject_id=principal.user_id)

    def principal_for(self, token: str) -> Principal:
        tenant = current_tenant()
        claims = self.tokens.verify(token, tenant)
        if self.kv.get(f"jti:{tenant.id}:{claims['jti']}") is not None:
            raise Unauthorized("token revoked", code="token_revoked")
        if (fam := claims.get("fam")) and self.kv.get(f"fam:{tenant.id}:{fam}") is not None:
            raise Unauthorized("session ended", code="token_revoked")
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise Unauthorized("invalid token subject") from None
        row = (User.select(User.id, User.role, User.active, User.token_version)
               .where(User.id == user_id).first())
        if row is None or not row.active or row.token_version != claims.get("ver"):
            raise Unauthorized("token no longer valid", code="token_revoked")
        # The role comes from the database, so a role change applies on the next request.
        return Principal(user_id=row.id, tenant_id=tenant.id, role=row.role,
                         grants=self.runtime.registry.grants_for(row.role),
                         token_id=claims["jti"], claims=claims)

    # -- roles and deactivation --------------------------------------------------------------

    def set_role(self, user_id: Any, role: str, actor_id: Any = None) -> User:
        if role not in ROLES:
            raise ValidationFailed.field("role", f"one of {', '.join(ROLES)}", "enum")
        with db.transaction():
            user = self.get_user(user_id)
            if user.role != role:
                old = user.role
                User.update(role=role, token_version=User.token_version + 1,
                            updated_at=utcnow()).where(User.id == user.id).execute()
                self.audit("user.role_changed", actor_id=actor_id, subject_id=user.id,
                           detail={"from": old, "to": role})
            return self.get_user(user_id)

    def deactivate(self, user_id: Any, actor_id: Any = None) -> User:
        with db.transaction():
            user = self.get_user(user_id)
            User.update(active=False, token_version=User.token_version + 1,
                        updated_at=utcnow()).where(User.id == user.id).execute()
            (RefreshToken.update(revoked_at=utcnow())
             .where((RefreshToken.user == user.id) & RefreshToken.revoked_at.is_null())
             .execute())
            self.audit("user.deactivated", actor_id=actor_id, subject_id=user.id)
            return self.get_user(user_id)

    # -- audit -------------------------------------------------------------------------------

    def audit(self, action: str, actor_id: Any = None, subject_id: Any = None, ip: str = "",
              detail: dict[str, Any] | None = None) -> None:
        with db.transaction():
            AuditEntry.create(action=action, actor_id=actor_id, subject_id=subject_id, ip=ip,
                              detail=detail or {})
