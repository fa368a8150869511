"""app.secret_key and the secrets it replaced (app.old_secret_keys): encryption of data at rest
that survives rotating the secret, and the start-up check that the secrets in force can
decrypt what plugins stored.

A plugin that stores something encrypted under the secret declares it with the
``register_encrypted_at_rest`` hook (an `EncryptedAtRest`); the core then checks it at the
start of `learnplat serve` and `learnplat worker` and before key commands (`require_decryptable`),
and re-encrypts it with the current secret (`learnplat secrets reencrypt`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import db
from .errors import LearnplatError
from .tenancy import TenantInfo, tenant_context

if TYPE_CHECKING:
    from .runtime import Runtime

SETTING_HINT = ("set app.secret_key (LEARNPLAT_APP_SECRET_KEY) to the secret they were made "
                "with, or list that secret in app.old_secret_keys "
                "(LEARNPLAT_APP_OLD_SECRET_KEYS)")


def derive_key(secret: bytes, info: bytes, salt: bytes = b"learnplat-keys") -> bytes:
    """32 bytes for one purpose (`info`) from a secret: HKDF-SHA256, so each use of the secret
    has its own key and one leaking says nothing of the others."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


class SecretBox:
    """Fernet under HKDF(secret, info) for the current secret and for each old one.

    Encrypts with the current secret (app.secret_key) only; decrypts with any of them, so data
    made before a rotation stays readable until `learnplat secrets reencrypt` has rewritten it
    (MultiFernet: the first key encrypts, every key decrypts)."""

    def __init__(self, secrets: Sequence[bytes], info: bytes, salt: bytes = b"learnplat-keys"):
        if not secrets:
            raise ValueError("SecretBox needs at least the current secret")
        fernets = [Fernet(base64.urlsafe_b64encode(derive_key(s, info, salt))) for s in secrets]
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def encrypt(self, data: bytes) -> str:
        return self._current.encrypt(data).decode()

    def decrypt(self, token: str) -> bytes:
        """The plaintext, under whichever secret made it; InvalidToken when none did."""
        return self._all.decrypt(token.encode())

    def state(self, token: str) -> str:
        """"current" (made with app.secret_key), "old" (with one of app.old_secret_keys) or
        "undecryptable" (with none of them)."""
        try:
            self._current.decrypt(token.encode())
            return "current"
        except InvalidToken:
            pass
        try:
            self._all.decrypt(token.encode())
            return "old"
        except InvalidToken:
            return "undecryptable"

    def reencrypt(self, token: str) -> str | None:
        """`token` encrypted with the current secret, or None when it already is (so a second
        run writes nothing). InvalidToken when no secret in force decrypts it."""
        if self.state(token) == "current":
            return None
        return self._current.encrypt(self._all.decrypt(token.encode())).decode()


@dataclass
class SecretScan:
    """What one tenant holds of one kind of encrypted data: how many items, how many only an
    old secret decrypts, how many none does."""

    total: int = 0
    old: int = 0
    undecryptable: int = 0

    def add(self, state: str) -> None:
        self.total += 1
        if state == "old":
            self.old += 1
        elif state == "undecryptable":
            self.undecryptable += 1


@dataclass
class EncryptedAtRest:
    """Data a plugin stores encrypted under app.secret_key (``register_encrypted_at_rest``).

    `scan(runtime) -> SecretScan` and `reencrypt(runtime) -> int` (how many items it
    rewrote) run once per tenant, disabled tenants included, inside that tenant's context and
    a transaction; `name` says what it is in messages ("token-signing keys")."""

    name: str
    scan: Callable[[Runtime], SecretScan]
    reencrypt: Callable[[Runtime], int]
    plugin: str = ""


@dataclass
class TenantReport:
    tenant: str
    data: str
    plugin: str
    scan: SecretScan
    rewritten: int = 0


@dataclass
class SecretsReport:
    """Every tenant's scan (or re-encryption) of every declared kind of encrypted data."""

    rows: list[TenantReport] = field(default_factory=list)

    @property
    def undecryptable(self) -> list[TenantReport]:
        return [r for r in self.rows if r.scan.undecryptable]

    @property
    def on_old_secret(self) -> int:
        return sum(r.scan.old for r in self.rows)

    def problems(self) -> list[str]:
        """One sentence per school holding data none of the secrets in force decrypts."""
        by_school: dict[str, list[str]] = {}
        for r in self.undecryptable:
            by_school.setdefault(r.tenant, []).append(
                f"{r.data}: {r.scan.undecryptable} of {r.scan.total}")
        return [f"app.secret_key cannot decrypt the keys of school {slug!r} "
                f"({', '.join(sorted(what))})" for slug, what in by_school.items()]


def declarations(runtime: Runtime) -> list[EncryptedAtRest]:
    return list(runtime.registry.encrypted_at_rest)


def _each(runtime: Runtime, work: Callable[[EncryptedAtRest, TenantInfo], TenantReport],
          write: bool) -> SecretsReport:
    report = SecretsReport()
    decls = declarations(runtime)
    if not decls:
        return report
    with db.connection():
        tenants = runtime.tenants.list()  # disabled ones too: their keys must still decrypt
        for tenant in tenants:
            # One transaction per tenant: RLS on PostgreSQL reads only the tenant set in it,
            # and a re-encryption either rewrites all of one school's items or none.
            with tenant_context(tenant), db.transaction(write=write):
                # Every declaration, even of a plugin the school switched off: its keys stay
                # at rest and come back into use when it is switched on again.
                for decl in decls:
                    report.rows.append(work(decl, tenant))
    return report


def _tables_missing(exc: Exception) -> bool:
    # Before the first `learnplat migrate` there is nothing at rest to check.
    text = str(exc).lower()
    return "no such table" in text or "does not exist" in text


def scan(runtime: Runtime) -> SecretsReport:
    """Try to decrypt every item every plugin declared, in every tenant."""
    def one(decl: EncryptedAtRest, tenant: TenantInfo) -> TenantReport:
        return TenantReport(tenant.slug, decl.name, decl.plugin, decl.scan(runtime))

    try:
        return _each(runtime, one, write=False)
    except Exception as exc:
        if _tables_missing(exc):
            return SecretsReport()
        raise


def require_decryptable(runtime: Runtime) -> SecretsReport:
    """Refuse (LearnplatError naming the settings) when app.secret_key and app.old_secret_keys
    together cannot decrypt something stored at rest: serving would answer 500 to every login
    of that school, and a key command would add keys the live deployment cannot read."""
    report = scan(runtime)
    problems = report.problems()
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LearnplatError("; ".join(problems[:3]) + more + ": " + SETTING_HINT)
    return report


def reencrypt(runtime: Runtime) -> SecretsReport:
    """Rewrite every item an old secret made with app.secret_key, one transaction per tenant;
    refuses first (nothing written) when anything is undecryptable. Idempotent."""
    require_decryptable(runtime)

    def one(decl: EncryptedAtRest, tenant: TenantInfo) -> TenantReport:
        before = decl.scan(runtime)
        return TenantReport(tenant.slug, decl.name, decl.plugin, before,
                            decl.reencrypt(runtime))

    return _each(runtime, one, write=True)


def secrets_in_force(current: bytes, old: Sequence[str]) -> tuple[bytes, ...]:
    """The current secret first (it encrypts and signs), then the old ones (they only
    decrypt and verify), without repeats."""
    out = [current]
    for s in old:
        b = s.encode()
        if b not in out:
            out.append(b)
    return tuple(out)


def any_matches(secrets: Sequence[bytes], check: Callable[[bytes], Any]) -> bool:
    """Whether `check(secret)` is true for one of `secrets`: a signature made under an old
    secret still verifies during the overlap."""
    return any(check(s) for s in secrets)
