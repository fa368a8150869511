"""Identity service: accounts, logins, token pairs, revocation. Imports nothing from Falcon.

Other plugins reach it as ``runtime.service(IDENTITY)`` (an ``IdentityAPI``, see api.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from peewee import fn
from pydantic import BaseModel, ConfigDict, Field

from learnplat.plugin import (
    Conflict,
    NotFound,
    PageQuery,
    PermissionDenied,
    Principal,
    RateLimited,
    StoreUnavailable,
    Unauthorized,
    ValidationFailed,
    current_tenant,
    db,
    paginate,
    rate_limit_key,
    utcnow,
)

from . import passwords
from .api import Role, UserInfo
from .emails import check_email, email_problem, normalize_email
from .keys import token_keys
from .models import ROLES, AuditEntry, RefreshToken, User
from .schemas import AuditOut, AuditPage, TokenPair, UserOut, UserPage
from .tokens import TokenCodec

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


# The user's role, active flag and token version, cached in the key-value store so that
# authenticating needs no database read (principal_for). Written by `_publish_state` after a
# change commits; filled on a miss with SET NX, so a stale fill never wins over a change.
_STATE_TTL = 3600.0


def _restored_key(tenant_id: int) -> str:
    """Present while the store holds this tenant's revocations: a Redis restarted without
    persistence (or flushed) comes back without it, and the revocations are restored from the
    database before the store is trusted again (`_restore_revocations`)."""
    return f"revok:{tenant_id}"


def _state_key(tenant_id: int, user_id: Any) -> str:
    return f"usr:{tenant_id}:{user_id}"


def _format_state(role: str, active: bool, version: int) -> str:
    return f"{role}|{int(bool(active))}|{version}"


def _parse_state(state: str) -> tuple[str, bool, int]:
    role, active, version = state.split("|")
    return role, active == "1", int(version)

class IdentitySettings(BaseModel):
    """The [identity] section: rate limits and lockout (per tenant, counted in the kv store).

    Per-address limits are sized for a school network, where a whole class (or school) shares
    one public address: they bound how much one address can cost us and how fast it can guess
    across many accounts, while guessing one account's password is stopped by the per-account
    limits and the lock. docs/security.md gives the reasoning behind each number.
    """

    model_config = ConfigDict(extra="forbid")

    limit_window: int = Field(300, gt=0, description="Seconds a rate-limit window lasts.")
    login_per_ip: int = Field(600, gt=0, description="Login attempts per address per window.")
    login_failures_per_ip: int = Field(
        200, gt=0, description="Failed logins per address per login_failure_window.")
    login_failure_window: int = Field(
        900, gt=0, description="Seconds over which an address's failed logins are counted.")
    login_per_account: int = Field(10, gt=0, description="Login attempts per email per window.")
    register_per_ip: int = Field(100, gt=0, description="Registrations per address per window.")
    register_per_account: int = Field(3, gt=0, description="Registrations per email per window.")
    refresh_per_ip: int = Field(1200, gt=0, description="Refreshes per address per window.")
    refresh_per_account: int = Field(30, gt=0, description="Refreshes per user per window.")
    lock_after_failures: int = Field(5, gt=0, description="Failed logins before a lock.")
    lock_seconds: int = Field(900, gt=0, description="How long a locked account stays locked.")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_info(user: User) -> UserInfo:
    return UserInfo(id=user.id, email=user.email, name=user.name, role=cast(Role, user.role),
                    active=user.active, avatar_url=user.avatar_url)


class IdentityService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        auth = runtime.settings.auth
        self.keys = token_keys(runtime.secret_keys, auth.access_token_ttl)
        self.tokens = TokenCodec(self.keys, auth.issuer, auth.access_token_ttl)
        self.refresh_ttl = auth.refresh_token_ttl

    @property
    def kv(self) -> Any:
        return self.runtime.kv

    @property
    def limits(self) -> IdentitySettings:
        return self.runtime.plugin_settings.get("identity") or IdentitySettings()

    # -- accounts ----------------------------------------------------------------------------

    def create_user(self, email: str, password: str | None, name: str = "",
                    role: str = "student", email_verified: bool = False,
                    actor_id: Any = None) -> User:
        email = check_email(email)
        if role not in ROLES:
            raise ValidationFailed.field("role", f"one of {', '.join(ROLES)}", "enum")
        if password is not None:
            password = passwords.normalize_password(password)
            passwords.check_policy(password, email)
        with db.transaction():
            if User.select().where(User.email == email).exists():
                raise Conflict("an account with this email exists", code="email_taken")
            user = User.create(
                email=email, name=name, role=role, email_verified=email_verified,
                password_hash=passwords.hash_password(password) if password else None,
            )
            self.audit("user.created", actor_id=actor_id, subject_id=user.id,
                       detail={"role": role})
        return user

    def register(self, email: str, password: str, name: str, ip: str = "") -> User:
        lim = self.limits
        self._limit(f"register-ip:{rate_limit_key(ip)}", lim.register_per_ip)
        self._limit(f"register-acct:{normalize_email(email)}", lim.register_per_account)
        return self.create_user(email, password, name, role="student")

    def get_user(self, user_id: Any) -> User:
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    def get_user_by_email(self, email: str) -> User:
        user = User.get_or_none(User.email == normalize_email(email))
        if user is None:
            raise NotFound(f"no user with email {normalize_email(email)}")
        return user

    def get_users(self, user_ids: Iterable[Any]) -> dict[Any, User]:
        """Users by id in one query per 500 ids (unknown ids are left out); for lists that show
        many users (an enrollment's students) without one query per row. Since 0.1."""
        ids = list(dict.fromkeys(user_ids))
        found: dict[Any, User] = {}
        for start in range(0, len(ids), 500):
            for user in User.select().where(User.id.in_(ids[start:start + 500])):
                found[user.id] = user
        return found

    def get_users_by_email(self, emails: Iterable[str]) -> dict[str, User]:
        """Users by (normalized) email in one query per 500 emails; unknown emails are left
        out. Since 0.1."""
        wanted = list(dict.fromkeys(normalize_email(e) for e in emails))
        found: dict[str, User] = {}
        for start in range(0, len(wanted), 500):
            for user in User.select().where(User.email.in_(wanted[start:start + 500])):
                found[user.email] = user
        return found

    # -- IdentityAPI: for other plugins (frozen UserInfo, never User rows) -------------------

    def user(self, user_id: int) -> UserInfo | None:
        if not isinstance(user_id, int) or not 0 < user_id < 2**31:
            return None
        found = User.get_or_none(User.id == user_id)
        return user_info(found) if found else None

    def users(self, user_ids: Iterable[int]) -> dict[int, UserInfo]:
        return {k: user_info(u) for k, u in self.get_users(user_ids).items()}

    def users_by_email(self, emails: Iterable[str]) -> dict[str, UserInfo]:
        return {k: user_info(u) for k, u in self.get_users_by_email(emails).items()}

    def user_ids(self, role: str | None = None, after_id: int = 0, limit: int = 1000
                 ) -> list[int]:
        query = User.select(User.id).where(User.active & (User.id > after_id))
        if role:
            query = query.where(User.role == role)
        return [u.id for u in query.order_by(User.id).limit(limit)]

    def create_account(self, email: str, name: str, role: str, actor_id: int | None = None
                       ) -> UserInfo:
        """IdentityAPI.create_account: a user without a password (signs in elsewhere)."""
        return user_info(self.create_user(email, None, name, role=role, actor_id=actor_id))

    def sign_in_code(self, user_id: int, method: str, ip: str = "",
                     detail: dict[str, Any] | None = None) -> str:
        """IdentityAPI.sign_in_code."""
        from .oauth import one_time_code

        user = User.get_or_none(User.id == user_id)
        if user is None or not user.active:
            raise PermissionDenied("this account cannot sign in here", code="oauth_inactive")
        self.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip,
                   detail={"method": method, **(detail or {})})
        return one_time_code(self.kv, user.id)

    def set_avatar_url(self, user_id: int, url: str) -> UserInfo:
        user = self.get_user(user_id)
        user.avatar_url = url
        user.updated_at = utcnow()
        user.save()
        return user_info(user)

    @staticmethod
    def _lock(user_id: Any) -> None:
        """Hold the user's row until the transaction ends (PostgreSQL; SQLite's write
        transaction holds the whole database already): two conditional updates of one user
        then check their If-Match one after the other, never both against the same row."""
        if db.is_postgres():
            User.select(User.id).where(User.id == user_id).for_update().execute()

    def visible_user(self, principal: Principal, user_id: Any, permission: str) -> User:
        """The user `principal` may see or edit; 404 for others' accounts under "own"."""
        user = self.get_user(user_id)
        principal.require(permission, owner_id=user.id)
        return user

    def list_users(self, page: PageQuery, role: str | None = None,
                   q: str | None = None) -> UserPage:
        query = User.select()
        if role:
            query = query.where(User.role == role)
        if q:
            needle = q.lower()
            query = query.where(fn.LOWER(User.email).contains(needle)
                                | fn.LOWER(User.name).contains(needle))
        return UserPage(**paginate(query, [User.id], page, UserOut.of))

    def update_profile(self, principal: Principal, user_id: Any,
                       changes: dict[str, Any],
                       precondition: Callable[[], None] | None = None) -> User:
        """Edit name/bio/avatar_url (self or user.update "any"); `role` needs user.manage.
        `precondition` (an If-Match check) runs once the user's row is locked, before any
        write."""
        with db.transaction():
            user = self.visible_user(principal, user_id, "user.update")
            if precondition is not None:
                self._lock(user.id)
                precondition()
            role = changes.pop("role", None)
            if role is not None and role != user.role:
                if not principal.can("user.manage"):
                    raise PermissionDenied("only an admin can change a role",
                                           code="role_change_forbidden")
                user = self.set_role(user.id, role, actor_id=principal.user_id)
            if changes:
                User.update(updated_at=utcnow(), **changes).where(User.id == user.id).execute()
                self.audit("user.updated", actor_id=principal.user_id, subject_id=user.id,
                           detail={"fields": sorted(changes)})
            return self.get_user(user.id)

    # -- rate limits and logins ----------------------------------------------------------------

    def _limit(self, key: str, limit: int) -> None:
        full = f"rl:{current_tenant().id}:{key}"
        count = self.kv.incr(full, self.limits.limit_window)
        if count > limit:
            raise RateLimited(int(self.kv.ttl(full) or self.limits.limit_window))

    def _failures_key(self, ip: str) -> str:
        return f"rl:{current_tenant().id}:login-fail-ip:{rate_limit_key(ip)}"

    def _check_address_failures(self, ip: str) -> None:
        """429 once an address has spent its failed-login budget: what stops one address from
        trying a few passwords on each of many accounts (credential stuffing), which the
        per-account limits never see. Checked before the password, so it is no oracle."""
        key = self._failures_key(ip)
        failures = int(self.kv.get(key) or 0)
        if failures >= self.limits.login_failures_per_ip:
            raise RateLimited(int(self.kv.ttl(key) or self.limits.login_failure_window),
                              "too many failed logins from this network; try again later")

    def _count_address_failure(self, ip: str) -> None:
        self.kv.incr(self._failures_key(ip), self.limits.login_failure_window)

    def _lock_key(self, email: str) -> str:
        return f"lock:{current_tenant().id}:{normalize_email(email)}"

    def _fail_key(self, email: str) -> str:
        return f"fail:{current_tenant().id}:{normalize_email(email)}"

    def login(self, email: str, password: str, ip: str = "") -> TokenPair:
        email = normalize_email(email)
        password = passwords.normalize_password(password)
        lim = self.limits
        self._limit(f"login-ip:{rate_limit_key(ip)}", lim.login_per_ip)
        self._check_address_failures(ip)
        self._limit(f"login-acct:{email}", lim.login_per_account)
        # The lock is keyed by email, not by account, so a locked address answers the same
        # whether or not an account holds it (no account enumeration through 429s).
        if self.kv.get(self._lock_key(email)) is not None:
            passwords.burn_time(password)
            self._count_address_failure(ip)
            self.audit("login.failed", ip=ip, detail={"email": email, "reason": "locked"})
            db.keep_on_failure()
            raise RateLimited(int(self.kv.ttl(self._lock_key(email)) or lim.lock_seconds),
                              "too many failed logins; this account is locked for a while")
        user = User.get_or_none(User.email == email)
        # Unknown email: verify against a dummy hash, so the failure costs the same time.
        ok, new_hash = passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.active:
            if not ok:
                self._record_failure(email, user.id if user else None)
            self._count_address_failure(ip)
            self.audit("login.failed", subject_id=user.id if user else None, ip=ip,
                       detail={"email": email,
                               "reason": "inactive" if ok and user else "bad_credentials"})
            db.keep_on_failure()
            raise Unauthorized("wrong email or password", code="bad_credentials")
        self.kv.delete(self._fail_key(email))
        with db.transaction():
            changes: dict[Any, Any] = {User.failed_logins: 0, User.locked_until: None}
            if new_hash:
                changes[User.password_hash] = new_hash
            User.update(changes).where(User.id == user.id).execute()
            self.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip,
                       detail={"method": "password"})
            return self.issue_tokens(user)

    def _record_failure(self, email: str, user_id: int | None) -> None:
        lim = self.limits
        failures = self.kv.incr(self._fail_key(email), lim.lock_seconds)
        locked = failures >= lim.lock_after_failures
        if locked:
            self.kv.set(self._lock_key(email), "1", lim.lock_seconds)
            self.kv.delete(self._fail_key(email))
        if user_id is None:
            return
        changes: dict[Any, Any] = {User.failed_logins: User.failed_logins + 1}
        if locked:
            changes[User.locked_until] = utcnow() + dt.timedelta(seconds=lim.lock_seconds)
        with db.transaction():
            User.update(changes).where(User.id == user_id).execute()
            if locked:
                self.audit("user.locked", subject_id=user_id, detail={"failures": failures})

    def is_locked(self, email: str) -> bool:
        return self.kv.get(self._lock_key(email)) is not None

    def unlock(self, user_id: Any, actor_id: Any = None) -> User:
        with db.transaction():
            user = self.get_user(user_id)
            self.kv.delete(self._lock_key(user.email))
            self.kv.delete(self._fail_key(user.email))
            self.kv.delete(f"rl:{current_tenant().id}:login-acct:{user.email}")
            User.update(failed_logins=0, locked_until=None).where(User.id == user.id).execute()
            self.audit("user.unlocked", actor_id=actor_id, subject_id=user.id)
            return self.get_user(user.id)

    # -- tokens ------------------------------------------------------------------------------

    def issue_tokens(self, user: User, family: str | None = None) -> TokenPair:
        """A new token pair for `user` (a new family, or `family` on a refresh)."""
        # Mark the store as holding this tenant's revocations (restoring them first if it
        # lost them), so the token's requests find the marker in their round trip.
        if self.kv.get(_restored_key(current_tenant().id)) is None:
            self._restore_revocations()
        family = family or secrets.token_hex(16)
        refresh = secrets.token_urlsafe(32)
        RefreshToken.create(
            user=user.id, family=family, token_hash=_hash(refresh),
            expires_at=utcnow() + dt.timedelta(seconds=self.refresh_ttl),
        )
        access = self.tokens.issue(current_tenant(), user.id, user.role, user.token_version,
                                   family)
        return TokenPair(access_token=access.token, refresh_token=refresh,
                         expires_in=access.expires_in)

    def issue_pair(self, user: User, family: str | None = None) -> dict[str, Any]:
        """`issue_tokens` as a dict (``pair["access_token"]``), for tests and benchmarks."""
        return self.issue_tokens(user, family).model_dump()

    def refresh(self, refresh_token: str, ip: str = "") -> TokenPair:
        self._limit(f"refresh-ip:{rate_limit_key(ip)}", self.limits.refresh_per_ip)
        row = RefreshToken.get_or_none(RefreshToken.token_hash == _hash(refresh_token))
        if row is None:
            raise Unauthorized("unknown refresh token", code="bad_refresh_token")
        self._limit(f"refresh-user:{row.user_id}", self.limits.refresh_per_account)
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
            return self.issue_tokens(user, family=row.family)

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

    def principal_for(self, token: str, round_trip: Callable[[list[str], Any], list[Any]]
                      | None = None) -> Principal:
        """The caller of an access token, refused when revoked, ended or stale.

        One key-value round trip reads the token's revocation keys and the user's cached state
        (role, active, token version); `round_trip` (the request's, from the core) charges
        the rate limits in the same step. The user's row is read only when its state is not
        cached; without the store (Redis down) the database answers alone, revoked families
        included, so a revoked token stays refused."""
        tenant = current_tenant()
        claims = self.tokens.verify(token, tenant)
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise Unauthorized("invalid token subject") from None
        if not 0 < user_id < 2**31:  # beyond an INTEGER column the query itself would fail
            raise Unauthorized("invalid token subject")
        fam = claims.get("fam")
        reads = [f"jti:{tenant.id}:{claims['jti']}", _state_key(tenant.id, user_id),
                 _restored_key(tenant.id)]
        if fam:
            reads.append(f"fam:{tenant.id}:{fam}")
        try:
            values = round_trip(reads, user_id) if round_trip else self.kv.get_many(reads)
        except StoreUnavailable:
            return self._principal_from_database(claims, user_id, fam)
        if values[2] is None:
            # The store lost its keys (Redis restarted without persistence, or flushed): a
            # missing revocation proves nothing. Put them back, and answer from the database.
            self._restore_revocations()
            return self._principal_from_database(claims, user_id, fam)
        if values[0] is not None:
            raise Unauthorized("token revoked", code="token_revoked")
        if fam and values[3] is not None:
            raise Unauthorized("session ended", code="token_revoked")
        state = values[1] or self._cache_state(user_id)
        role, active, version = _parse_state(state)
        if not active or version != claims.get("ver"):
            raise Unauthorized("token no longer valid", code="token_revoked")
        # The role comes from the user's record (cached), never from the token's claim.
        return Principal(user_id=user_id, tenant_id=tenant.id, role=role,
                         grants=self.runtime.registry.grants_for(role),
                         token_id=claims["jti"], claims=claims)

    def _restore_revocations(self) -> None:
        """Write the tenant's recently ended token families back into the store, then the
        marker that says it holds them. Every access token names its family, and one issued
        before its family ended expires within the access token lifetime of the ending: the
        families ended since then are all that can still matter."""
        tenant_id = current_tenant().id
        ttl = self.tokens.ttl
        now = utcnow()
        ended = (RefreshToken.select(RefreshToken.family, fn.MAX(RefreshToken.revoked_at))
                 .where(RefreshToken.revoked_at > now - dt.timedelta(seconds=ttl))
                 .group_by(RefreshToken.family).tuples())
        for family, revoked_at in ended:
            left = ttl - (now - revoked_at).total_seconds()
            if left > 0:
                self.kv.set(f"fam:{tenant_id}:{family}", "restored", left + 1)
        self.kv.set(_restored_key(tenant_id), "1")

    def _principal_from_database(self, claims: dict[str, Any], user_id: int,
                                 fam: str | None) -> Principal:
        row = (User.select(User.id, User.role, User.active, User.token_version)
               .where(User.id == user_id).first())
        if row is None or not row.active or row.token_version != claims.get("ver"):
            raise Unauthorized("token no longer valid", code="token_revoked")
        # Logout and reuse detection end the family in the database too.
        if fam and RefreshToken.select().where(
                (RefreshToken.family == fam) & RefreshToken.revoked_at.is_null(False)).exists():
            raise Unauthorized("session ended", code="token_revoked")
        tenant = current_tenant()
        return Principal(user_id=row.id, tenant_id=tenant.id, role=row.role,
                         grants=self.runtime.registry.grants_for(row.role),
                         token_id=claims["jti"], claims=claims)

    def _cache_state(self, user_id: int) -> str:
        """Read the user's state from the database and cache it unless a writer got there
        first (add: SET NX), so a stale read never overwrites a change (`_publish_state`)."""
        row = (User.select(User.role, User.active, User.token_version)
               .where(User.id == user_id).first())
        if row is None:
            raise Unauthorized("token no longer valid", code="token_revoked")
        state = _format_state(row.role, row.active, row.token_version)
        try:
            self.kv.add(_state_key(current_tenant().id, user_id), state, _STATE_TTL)
        except Exception:  # the cache is an optimisation; the answer stands without it
            pass
        return state

    def _publish_state(self, user_id: Any) -> None:
        """After a change to role, active or token version commits: overwrite the cached
        state, so every process refuses the user's old tokens from the next request on."""
        tenant_id = current_tenant().id
        key = _state_key(tenant_id, user_id)
        self.kv.delete(key)  # before commit too: nothing reads a state about to change

        def publish() -> None:
            row = (User.select(User.role, User.active, User.token_version)
                   .where(User.id == user_id).first())
            if row is None:
                self.kv.delete(key)
            else:
                self.kv.set(key, _format_state(row.role, row.active, row.token_version),
                            _STATE_TTL)

        db.on_commit(publish)

    # -- roles and deactivation --------------------------------------------------------------

    def _keep_an_admin(self, user: User) -> None:
        """A school must keep one active admin, or nobody could manage it through the API."""
        if user.role != "admin" or not user.active:
            return
        others = User.select().where((User.role == "admin") & User.active & (User.id != user.id))
        if not others.exists():
            raise Conflict("this is the school's last active admin", code="last_admin")

    def set_role(self, user_id: Any, role: str, actor_id: Any = None) -> User:
        if role not in ROLES:
            raise ValidationFailed.field("role", f"one of {', '.join(ROLES)}", "enum")
        with db.transaction():
            user = self.get_user(user_id)
            if user.role != role:
                self._keep_an_admin(user)
                old = user.role
                # The version bump makes every access token of the user carry a stale "ver",
                # so each is refused from the next request on: no token that still names the
                # old role (third parties read the claim) stays usable. The refresh token is
                # kept; the pair it gives carries the new role and version.
                User.update(role=role, token_version=User.token_version + 1,
                            updated_at=utcnow()).where(User.id == user.id).execute()
                self._publish_state(user.id)
                self.audit("user.role_changed", actor_id=actor_id, subject_id=user.id,
                           detail={"from": old, "to": role})
            return self.get_user(user_id)

    def deactivate(self, user_id: Any, actor_id: Any = None,
                   precondition: Callable[[], None] | None = None) -> User:
        with db.transaction():
            user = self.get_user(user_id)
            if precondition is not None:  # an If-Match check, under the row's lock
                self._lock(user.id)
                precondition()
            if not user.active:
                return user
            self._keep_an_admin(user)
            User.update(active=False, token_version=User.token_version + 1,
                        updated_at=utcnow()).where(User.id == user.id).execute()
            self._publish_state(user.id)
            (RefreshToken.update(revoked_at=utcnow())
             .where((RefreshToken.user == user.id) & RefreshToken.revoked_at.is_null())
             .execute())
            self.audit("user.deactivated", actor_id=actor_id, subject_id=user.id)
            return self.get_user(user_id)

    # -- bulk import -----------------------------------------------------------------------------

    def import_users(self, rows: list[ImportRow], valid_only: bool = False) -> ImportReport:
        """Create the users of a CSV in one transaction.

        Every row is checked first. By default any rejected row means nothing is imported
        (all or nothing); with `valid_only` the valid rows are imported and the report lists
        exactly which lines were created and which were rejected, and why.
        """
        report = ImportReport()
        seen: dict[str, int] = {}
        accepted: list[ImportRow] = []
        for row in rows:
            reason = self._check_import_row(row, seen)
            if reason:
                report.rejected.append((row.line, reason))
            else:
                seen[row.email] = row.line
                accepted.append(row)
        if report.rejected and not valid_only:
            return report
        with db.transaction():
            for row in accepted:
                user = self.create_user(row.email, row.password or None, row.name, row.role)
                report.created.append((row.line, user.email, user.id))
        return report

    def _check_import_row(self, row: ImportRow, seen: dict[str, int]) -> str | None:
        if row.error:
            return row.error
        if problem := email_problem(row.email):
            return f"email: {problem}"
        if row.role not in ROLES:
            return f"role: {row.role!r} is not one of {', '.join(ROLES)}"
        if len(row.name) > 200:
            return "name: use at most 200 characters"
        if row.password:
            try:
                passwords.check_policy(passwords.normalize_password(row.password), row.email)
            except ValidationFailed as exc:
                return f"password: {exc.errors[0]['message']}"
        if row.email in seen:
            return f"email: {row.email} repeats line {seen[row.email]}"
        if User.select().where(User.email == row.email).exists():
            return f"email: {row.email} already has an account"
        return None

    # -- audit -------------------------------------------------------------------------------

    def audit(self, action: str, actor_id: Any = None, subject_id: Any = None, ip: str = "",
              detail: dict[str, Any] | None = None) -> None:
        with db.transaction():
            AuditEntry.create(action=action, actor_id=actor_id, subject_id=subject_id, ip=ip,
                              detail=detail or {})

    def list_audit(self, page: PageQuery, action: str | None = None,
                   subject_id: int | None = None) -> AuditPage:
        query = AuditEntry.select()
        if action:
            query = query.where(AuditEntry.action == action)
        if subject_id is not None:
            query = query.where(AuditEntry.subject_id == subject_id)
        return AuditPage(**paginate(query, [AuditEntry.id.desc()], page, AuditOut.of))


@dataclass
class ImportRow:
    line: int
    email: str
    name: str
    role: str
    password: str = ""
    error: str = ""  # a parse error found while reading the file


@dataclass
class ImportReport:
    created: list[tuple[int, str, int]] = field(default_factory=list)  # (line, email, id)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
