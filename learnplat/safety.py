"""Unsafe settings: what `learnplat serve` and `learnplat worker` refuse to start with in
production (and warn about in development), and what `learnplat config` flags.

Development is app.environment = "development", or, when app.environment is empty, the
all-embedded set-up of the README's first screen: SQLite and a loopback bind. PostgreSQL or
any other bind (0.0.0.0, a LAN address, a UNIX socket) is production unless said otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from .errors import LearnplatError
from .settings import Settings, _is_loopback, _split_bind

# Shorter secrets are refused outside development: 32 characters of a random string (e.g.
# `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`) are ~190 bits; what an
# operator types by hand is rarely that, and the secret guards every school's signing keys.
MIN_SECRET_CHARS = 32


@dataclass(frozen=True)
class Finding:
    """One unsafe value: the setting, its value shown safely (never a secret), why it is
    unsafe and what to set instead. `refuse`: production refuses to start with it (else it
    is a warning everywhere)."""

    setting: str
    env: str
    shown: str
    why: str
    fix: str
    refuse: bool = True

    def line(self) -> str:
        return f"{self.setting} ({self.shown}): {self.why}; {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Environment:
    name: str  # "development" or "production"
    why: str


def environment(settings: Settings, bind: str | None = None) -> Environment:
    """Whether this process runs in development or production, and why."""
    if settings.app.environment:
        return Environment(settings.app.environment, "app.environment")
    bind = bind or settings.server.bind
    host, _ = _split_bind(bind)
    sqlite = settings.database.url.startswith("sqlite:")
    if sqlite and host is not None and _is_loopback(host):
        return Environment("development", f"app.environment is empty, the database is SQLite "
                                          f"and the bind {bind} is a loopback address")
    reason = "the database is PostgreSQL" if not sqlite else f"the bind {bind} is not loopback"
    return Environment("production", f"app.environment is empty and {reason}")


def _secret_findings(settings: Settings) -> list[Finding]:
    secret = settings.app.secret_key
    env = "LEARNPLAT_APP_SECRET_KEY"
    fix = (f"set app.secret_key to a random string of at least {MIN_SECRET_CHARS} characters "
           f"({env}), the same on every machine, kept apart from backups")
    if not secret:
        return [Finding("app.secret_key", env, "empty",
                        "each machine generates its own secret into var/secret.key, so "
                        "machines sharing a database cannot read each other's keys (every "
                        "login fails), and whoever copies var/ holds the secret", fix)]
    if len(secret) < MIN_SECRET_CHARS:
        return [Finding("app.secret_key", env, f"{len(secret)} characters",
                        "too short to protect the schools' signing keys at rest", fix)]
    return []


def _role_findings(settings: Settings) -> list[Finding]:
    """The PostgreSQL role of database.url: a superuser or a BYPASSRLS role is not subject to
    row-level security, so one missing tenant filter would show every school's rows."""
    url = settings.database.url
    if not url.startswith(("postgres:", "postgresql:")):
        return []
    flags = role_flags(url, settings.database.connect_timeout)
    env = "LEARNPLAT_DATABASE_URL"
    if isinstance(flags, str):
        return [Finding("database.url", env, "role not checked",
                        f"could not ask PostgreSQL about the role ({flags})",
                        "make sure the role has neither SUPERUSER nor BYPASSRLS", refuse=False)]
    role, superuser, bypass = flags
    what = [w for w, on in (("SUPERUSER", superuser), ("BYPASSRLS", bypass)) if on]
    if not what:
        return []
    return [Finding("database.url", env, f"role {role!r} has {' and '.join(what)}",
                    "row-level security does not apply to it, so it fences no school's rows "
                    "from another's",
                    f"connect as a role with NOSUPERUSER NOBYPASSRLS that owns the database "
                    f"(ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS, or another role); "
                    "docs/deployment.md, PostgreSQL")]


def role_flags(url: str, timeout: int) -> tuple[str, bool, bool] | str:
    """(role, rolsuper, rolbypassrls) of the role `url` connects as; a short reason when
    PostgreSQL cannot be asked."""
    import psycopg2

    parsed = urlparse(url)
    # libpq's keywords from the URL's query: psycopg2.connect takes them as **kwargs (Any).
    opts: dict[str, Any] = dict(parse_qsl(parsed.query))
    opts.setdefault("connect_timeout", str(timeout))
    try:
        conn = psycopg2.connect(
            dbname=(parsed.path or "/")[1:] or "postgres",
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or "127.0.0.1", port=parsed.port or 5432, **opts)
    except Exception as exc:  # unreachable, refused, bad password: said, not raised
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
                        "WHERE rolname = current_user")
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return "current_user not in pg_roles"
    return str(row[0]), bool(row[1]), bool(row[2])


def _public_url_findings(settings: Settings, bind: str) -> list[Finding]:
    public = settings.public_url_in_force(bind)
    if public.url:
        return []
    # Not refused: nothing wrong is signed any more (certificates answer 503 until it is set),
    # but a deployment others reach wants it.
    return [Finding("app.public_url", "LEARNPLAT_APP_PUBLIC_URL", "empty",
                    f"the address clients use cannot be derived from the bind {bind}: no "
                    "certificate is issued (503 public_url_not_set) unless "
                    "certificates.public_base_url or a school's certificates.base_url is set",
                    "set app.public_url to the https:// address clients use", refuse=False)]


def _proxy_findings(settings: Settings) -> list[Finding]:
    everyone = [p for p in settings.server.trusted_proxies if p != "unix"
                and ipaddress.ip_network(p, strict=False).prefixlen == 0]
    if not everyone:
        return []
    return [Finding("server.trusted_proxies", "LEARNPLAT_SERVER_TRUSTED_PROXIES",
                    ", ".join(everyone),
                    "every client is believed about its own address, so any client can "
                    "spend another's rate limits and forge the audit log's addresses",
                    "list only the reverse proxies' addresses")]


def _limit_findings(settings: Settings) -> list[Finding]:
    if settings.limits.enabled:
        return []
    return [Finding("limits.enabled", "LEARNPLAT_LIMITS_ENABLED", "false",
                    "no route is rate limited: one client's loop can take the API from "
                    "every school", "set limits.enabled = true (tune the rates instead)",
                    refuse=False)]


# Where clouds answer with the machine's credentials: a webhook URL reaching one would hand a
# school's admin the host's cloud role.
_METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
             ipaddress.ip_address("100.100.100.200"))


def _outbound_findings(settings: Settings) -> list[Finding]:
    """Webhook and LRS URLs are typed by school admins: what the operator opens to them."""
    out = settings.outbound
    findings = []
    if not out.require_https:
        findings.append(Finding(
            "outbound.require_https", "LEARNPLAT_OUTBOUND_REQUIRE_HTTPS", "false",
            "webhooks and statements may travel in clear text, their signatures and an LRS's "
            "credentials readable on the way", "set outbound.require_https = true",
            refuse=False))
    for cidr in out.allowed_networks:
        net = ipaddress.ip_network(cidr, strict=False)
        metadata = [str(a) for a in _METADATA if a.version == net.version and a in net]
        if metadata:
            findings.append(Finding(
                "outbound.allowed_networks", "LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS", cidr,
                f"holds the cloud metadata address {metadata[0]}: a school admin's webhook "
                "URL could read this machine's cloud credentials",
                "allow only the networks of the systems schools must reach"))
        elif net.prefixlen == 0 or any(net.overlaps(ipaddress.ip_network(n)) for n in (
                "127.0.0.0/8", "::1/128") if ipaddress.ip_network(n).version == net.version):
            findings.append(Finding(
                "outbound.allowed_networks", "LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS", cidr,
                "school admins' webhook URLs may reach this machine's own services",
                "allow only the networks of the systems schools must reach", refuse=False))
    return findings


def unsafe_settings(settings: Settings, bind: str | None = None, *,
                    check_database: bool = True) -> list[Finding]:
    """Every unsafe value of `settings` for a process serving `bind` (default
    server.bind). `check_database`: connect to PostgreSQL to read the role's attributes."""
    bind = bind or settings.server.bind
    return [*_secret_findings(settings),
            *(_role_findings(settings) if check_database else []),
            *_proxy_findings(settings), *_public_url_findings(settings, bind),
            *_limit_findings(settings), *_outbound_findings(settings)]


def check_start(settings: Settings, bind: str | None = None, *, process: str = "serve"
                ) -> list[str]:
    """Refuse (LearnplatError) to start a server or worker in production with an unsafe
    value; in development, or for findings that are only advice, return warning lines."""
    env = environment(settings, bind)
    findings = unsafe_settings(settings, bind)
    blocking = [f for f in findings if f.refuse]
    if env.name == "production" and blocking:
        raise LearnplatError(
            f"refusing to {process} in production ({env.why}): "
            + "; ".join(f.line() for f in blocking)
            + ". Or, on a machine only you reach, set app.environment = \"development\" "
              "(LEARNPLAT_APP_ENVIRONMENT)")
    return [f"warning: {f.line()}" + (" (refused in production)" if f.refuse else "")
            for f in findings]
