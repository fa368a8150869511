"""Layered configuration: <home>/config/learnplat.toml < LEARNPLAT_CONFIG file <
LEARNPLAT_<SECTION>_<KEY>, and where home is (resolve_home).

Settings are loaded and validated once, when an app, worker or CLI command starts; nothing here
runs at import time. A bad value fails start-up with one message naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from . import __version__

ENV_PREFIX = "LEARNPLAT_"
# Environment variables with the prefix that are not settings.
_NOT_SETTINGS = ("LEARNPLAT_CONFIG", "LEARNPLAT_HOME", "LEARNPLAT_TEST_", "LEARNPLAT_CLI_",
                 "LEARNPLAT_EXTRAS")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSettings(_Section):
    secret_key: str = ""
    # Secrets app.secret_key replaced, still accepted to decrypt keys at rest and to verify
    # signed URLs until `learnplat secrets reencrypt` has rewritten everything (docs/deployment.md,
    # "Rotating app.secret_key"). Never used to encrypt or sign anything new.
    old_secret_keys: tuple[str, ...] = ()
    # "development" warns about unsafe settings, "production" refuses to serve with them;
    # empty: development only for the all-embedded loopback set-up (learnplat.safety).
    environment: Literal["", "development", "production"] = ""
    debug: bool = False
    var_dir: str = "var"
    max_body_bytes: int = Field(1_048_576, gt=0)
    # Where clients reach the API. Empty: links in answers follow each request, and what must
    # not depend on a request (certificates: QR codes, DIDs) uses Settings.public_url_in_force.
    public_url: str = ""

    @field_validator("old_secret_keys", mode="before")
    @classmethod
    def _split_old_secrets(cls, value: Any) -> Any:
        # LEARNPLAT_APP_OLD_SECRET_KEYS='["a", "b"]' (JSON, for secrets holding a comma) or
        # "a,b"; a TOML list as it is.
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("old_secret_keys")
    @classmethod
    def _old_secrets_long_enough(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(s) < 16 for s in value):
            raise ValueError("each old secret must have at least 16 characters, as "
                             "app.secret_key had")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be empty or an http:// or https:// URL")
        return value.rstrip("/")


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/learnplat.db"
    max_connections: int = Field(20, gt=0)
    pool_timeout: float = Field(10, ge=0)
    stale_timeout: float = Field(300, gt=0)
    # Seconds to open a PostgreSQL connection: a server that does not answer (a dead host, a
    # partition) fails the request as 503 then, instead of after the kernel's ~2 minutes.
    connect_timeout: int = Field(5, gt=0)


class RedisSettings(_Section):
    url: str = ""
    # Namespaces every key (queue and key-value store), so several deployments or test runs
    # can share one Redis database.
    prefix: str = Field("learnplat", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Without them a Redis that stops answering (a dead host, a network partition) would hold a
    # request's thread forever: every call is bounded instead and fails as StoreUnavailable.
    connect_timeout: float = Field(2, gt=0)
    socket_timeout: float = Field(2, gt=0)


class QueueSettings(_Section):
    immediate: bool = False
    embedded_worker: bool = True
    workers: int = Field(2, gt=0)
    sqlite_path: str = "var/huey.db"


class EventSettings(_Section):
    inline_dispatch: bool = False
    max_attempts: int = Field(8, gt=0)
    backoff_seconds: float = Field(2, ge=0)


class StorageSettings(_Section):
    url: str = "file:var/storage"
    signing_ttl_seconds: int = Field(3600, gt=0)


class TenancySettings(_Section):
    cache_seconds: float = Field(5, ge=0)
    # "header_or_host": X-Tenant names the school, else the Host's domain (one address for
    # every school: apps, the API's own clients). "host": only the Host's domain does, so one
    # school's domain never serves another school's pages (X-Tenant must agree with it).
    select_by: Literal["header_or_host", "host"] = "header_or_host"


class ServerSettings(_Section):
    bind: str = "127.0.0.1:8000"
    workers: int = Field(2, gt=0)
    threads: int = Field(4, gt=0)
    timeout: int = Field(30, gt=0)
    # asgi: REST and WebSockets on one address (decision 0011); gthread: REST only.
    worker_class: Literal["asgi", "gthread"] = "asgi"
    connections: int = Field(2000, gt=0)
    # Reverse proxies whose forwarded header is believed (addresses, networks or "unix"); empty:
    # none is, and the client is whoever holds the connection (learnplat/client_address.py).
    trusted_proxies: tuple[str, ...] = ()
    # The one header those proxies append the client to. Only one is read: a proxy that writes
    # X-Forwarded-For passes a client's forged Forwarded header through untouched.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # Cached answers per process (learnplat.answers): catalogue pages, course objects and each
    # caller's course pages (a few KB each). max_age bounds staleness if a bump is ever lost.
    answer_cache_entries: int = Field(8192, gt=0)
    answer_cache_seconds: float = Field(300, gt=0)
    # Check every JSON answer against the model its @endpoint declares (learnplat.http.endpoint
    # check_response: strict types, no missing or undeclared key); a mismatch is a 500. On in
    # learnplat.testing's settings, so the suite proves the OpenAPI document true; off in
    # production, where it would only cost time (one attribute lookup per request when off).
    check_responses: bool = False
    # The API reference page, GET /docs (learnplat.http.reference); false: 404 for every
    # school (a school hides its own with the tenant setting api.reference = false).
    reference_page: bool = True
    # How long the first answer to a POST with an Idempotency-Key is replayed to its retries
    # (learnplat.idempotency). At least a day: clients retry after outages that long.
    idempotency_retention_hours: float = Field(24, ge=24)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        # LEARNPLAT_SERVER_TRUSTED_PROXIES="10.0.0.5, 10.0.1.0/24" as well as a JSON/TOML list.
        if isinstance(value, str):
            return tuple(p for p in re.split(r"[\s,]+", value) if p)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from .client_address import parse_trusted

        parse_trusted(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("forwarded_header", mode="before")
    @classmethod
    def _header_name(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class LimitSettings(_Section):
    """API rate limits (learnplat.ratelimit, docs/security.md): units per second and burst.
    A tenant's setting `limits` overrides any of the rates and bursts for that tenant."""

    enabled: bool = True
    user_rate: float = Field(5, gt=0)
    user_burst: int = Field(150, gt=0)
    heartbeat_rate: float = Field(1, gt=0)
    heartbeat_burst: int = Field(30, gt=0)
    tenant_rate: float = Field(500, gt=0)
    tenant_burst: int = Field(5000, gt=0)
    anonymous_rate: float = Field(10, gt=0)
    anonymous_burst: int = Field(300, gt=0)


class BackupSettings(_Section):
    """`learnplat backup` (learnplat.backup, docs/deployment.md#backups-and-restore)."""

    # The role pg_dump connects as: it must see every school's rows (BYPASSRLS and
    # pg_read_all_data, `learnplat backup setup-role`), which the application's role must not.
    # Empty: database.url, whose role is refused when row-level security applies to it.
    database_url: str = ""


class OutboundSettings(_Section):
    """Delivery to a school's other systems: webhooks, xAPI (learnplat.outbound,
    docs/webhooks.md). The HTTP client's safety (safe_http) and the engine's retries."""

    # Networks that may be reached although loopback, private or link-local (an on-premises
    # learning record store; the tests' receivers on 127.0.0.0/8). Empty: none.
    allowed_networks: tuple[str, ...] = ()
    require_https: bool = True
    # Short: a dead or slow endpoint holds a worker thread at most this long per attempt.
    connect_timeout: float = Field(5, gt=0)
    read_timeout: float = Field(15, gt=0)
    max_answer_bytes: int = Field(65536, gt=0)  # read at most this of an answer's body
    answer_bytes_kept: int = Field(1024, ge=0)  # stored with each attempt
    # Seconds after the 1st, 2nd, ... failed attempt of a message (about three days in all);
    # the message fails when it is spent.
    retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 43200,
                                         43200, 86400)
    jitter: float = Field(0.2, ge=0, lt=1)  # each wait is scaled by 1 ± jitter
    # Consecutive failed attempts after which the destination waits as a whole (the breaker).
    breaker_failures: int = Field(5, gt=0)
    # A destination with no success for this long, failing all along, is disabled.
    disable_after_hours: float = Field(72, gt=0)
    # How long a worker owns a destination; a killed worker's lease lapses after it.
    lease_seconds: float = Field(120, gt=0)
    # One destination's turn: then it goes to the back of the queue (fairness).
    turn_seconds: float = Field(10, gt=0)
    turn_messages: int = Field(100, gt=0)
    user_agent: str = Field(f"learnplat/{__version__}", min_length=1, max_length=200)

    @field_validator("allowed_networks", "retry_schedule", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS="10.0.0.0/8, fd00::/8" as well as a JSON list.
        if isinstance(value, str):
            return tuple(p for p in re.split(r"[\s,]+", value) if p)
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=True)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not a network (CIDR such as 10.1.0.0/16): "
                                 f"{exc}") from None
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give at least one wait (seconds)")
        if any(not math.isfinite(v) or v <= 0 for v in value):
            raise ValueError("each wait must be a positive number of seconds")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_turn(self) -> OutboundSettings:
        # A worker still sending when its lease lapsed would share the destination with
        # another: the lease must cover a whole turn plus its last attempt.
        turn = self.turn_seconds + self.connect_timeout + self.read_timeout
        if self.lease_seconds <= turn:
            raise ValueError(f"lease_seconds must exceed turn_seconds + connect_timeout + "
                             f"read_timeout ({turn:g})")
        if self.answer_bytes_kept > self.max_answer_bytes:
            raise ValueError("answer_bytes_kept must not exceed max_answer_bytes")
        return self


class LoggingSettings(_Section):
    """What every process logs beyond config/logging.toml (learnplat.logs, docs/deployment.md
    "Logs")."""

    # One line per request from gunicorn (client, request line, status, bytes, duration,
    # request id, school); off for a site whose proxy already keeps one.
    access_log: bool = True
    # During an outage, a failure of one kind (logger, exception type, message) is logged
    # once with its traceback, then once per this many seconds as "... repeated N times".
    repeat_seconds: float = Field(60, gt=0)


class AuthSettings(_Section):
    access_token_ttl: int = Field(900, gt=0)
    refresh_token_ttl: int = Field(2_592_000, gt=0)
    issuer: str = "learnplat"


class Settings(BaseModel):
    """Validated settings. `plugins` holds the sections that plugins declare themselves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: AppSettings = AppSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    queue: QueueSettings = QueueSettings()
    events: EventSettings = EventSettings()
    storage: StorageSettings = StorageSettings()
    tenancy: TenancySettings = TenancySettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    backup: BackupSettings = BackupSettings()
    logging: LoggingSettings = LoggingSettings()
    outbound: OutboundSettings = OutboundSettings()
    plugins: dict[str, dict[str, Any]] = {}
    home: str = "."
    # How home was chosen and which files were read, for `learnplat config` and start-up notes.
    home_source: str = ""
    config_files: tuple[str, ...] = ()

    def path(self, value: str) -> Path:
        """Resolve a configured path against the repository (home) directory."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.home) / p

    @property
    def var_path(self) -> Path:
        return self.path(self.app.var_dir)

    def public_url_in_force(self, bind: str | None = None) -> PublicUrl:
        """The API's public base URL: `app.public_url`, else derived from the address served
        (`bind`, default `server.bind`; `learnplat serve --bind` passes its own to the
        processes it starts) when that is a loopback address: `http://localhost:PORT`. A host
        name, not 127.0.0.1: a did:web must name a domain, never an IP address. Any other bind
        (0.0.0.0, a LAN address, a UNIX socket) says nothing of the name clients use, so the
        URL is left unknown (`url` empty) and `source` says which setting to set."""
        if self.app.public_url:
            return PublicUrl(self.app.public_url, "app.public_url")
        bind = bind or self.server.bind
        host, port = _split_bind(bind)
        if host is not None and _is_loopback(host):
            url = "http://localhost" + ("" if port == "80" else f":{port}")
            return PublicUrl(url, f"derived from the loopback bind {bind}; set app.public_url "
                                  "(LEARNPLAT_APP_PUBLIC_URL) for another")
        return PublicUrl("", f"unknown: the bind {bind} is not a loopback address, so the name "
                             "clients use cannot be derived; set app.public_url "
                             "(LEARNPLAT_APP_PUBLIC_URL)")


class PublicUrl(NamedTuple):
    """`Settings.public_url_in_force()`: the URL ("" when unknown) and where it comes from."""

    url: str
    source: str


def _split_bind(bind: str) -> tuple[str | None, str]:
    """(host, port) of a gunicorn bind HOST:PORT or [IPv6]:PORT; (None, "") for unix:PATH or
    fd://N."""
    if bind.startswith(("unix:", "fd://")):
        return None, ""
    host, sep, port = bind.rpartition(":")
    if not sep:  # gunicorn's default port
        return bind, "8000"
    return host.strip("[]"), port


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_NOT_SECTIONS = ("plugins", "home", "home_source", "config_files")
CORE_SECTIONS = frozenset(k for k in Settings.model_fields if k not in _NOT_SECTIONS)

HOME_MARKER = Path("config") / "learnplat.toml"


def user_home_dir(environ: Mapping[str, str]) -> Path:
    """The per-user home: %LOCALAPPDATA%\\learnplat on Windows, else
    $XDG_DATA_HOME/learnplat (~/.local/share/learnplat)."""
    if os.name == "nt" and environ.get("LOCALAPPDATA"):
        return Path(environ["LOCALAPPDATA"]) / "learnplat"
    xdg = environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "learnplat"


def resolve_home(environ: Mapping[str, str] | None = None, cwd: Path | None = None
                 ) -> tuple[Path, str]:
    """Where config/ and var/ live, and why, first match wins:

    1. ``LEARNPLAT_HOME``;
    2. the nearest directory at or above the current one holding ``config/learnplat.toml``
       (a site directory, or the checkout: ``bin/serve`` and ``bin/test`` run from it);
    3. the per-user directory (``user_home_dir``).

    Never the directory the package happens to be installed in: an editable install run from
    elsewhere must not write var/ into its (possibly read-only) checkout, and a plain install
    must not scatter var/ into whatever directory a command was started from.
    """
    environ = os.environ if environ is None else environ
    if env := environ.get("LEARNPLAT_HOME"):
        return Path(env).expanduser().resolve(), "LEARNPLAT_HOME"
    start = (cwd or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if (directory / HOME_MARKER).is_file():
            return directory, f"holds {HOME_MARKER}, at or above the current directory"
    try:
        return user_home_dir(environ), "per-user directory"
    except RuntimeError:  # no user home directory at all (some containers): stay put
        return start, "current directory"


def default_home() -> Path:
    """The home directory chosen by resolve_home() for this process."""
    return resolve_home()[0]


def config_files(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The TOML files load_settings reads, in order (later ones override earlier ones)."""
    files = []
    if (home / HOME_MARKER).exists():
        files.append(home / HOME_MARKER)
    if extra := environ.get("LEARNPLAT_CONFIG"):
        files.append(Path(extra))
    return files


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _env_value(raw: str) -> Any:
    # Lists and tables can be given as JSON; everything else stays a string for pydantic to coerce.
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def setting_env_vars(environ: Mapping[str, str]) -> list[str]:
    """The LEARNPLAT_<SECTION>_<KEY> variables of `environ` that set a setting."""
    return sorted(name for name in environ
                  if name.startswith(ENV_PREFIX) and not name.startswith(_NOT_SETTINGS))


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, dict[str, Any]] = {}
    for name in setting_env_vars(environ):
        raw = environ[name]
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if not key:
            raise ConfigError(f"{name}: expected LEARNPLAT_<SECTION>_<KEY>")
        layer.setdefault(section, {})[key] = _env_value(raw)
    return layer


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Settings:
    """Build Settings from the three layers plus `overrides` (used by tests and the CLI)."""
    environ = os.environ if environ is None else environ
    if home is None:
        home, home_source = resolve_home(environ)
    else:
        home_source = "given by the caller"
    files = config_files(home, environ)
    data: dict[str, Any] = {}
    for path in files:
        data = _merge(data, _read_toml(path))
    data = _merge(data, _from_env(environ))
    if overrides:
        data = _merge(data, overrides)
    core = {k: v for k, v in data.items() if k in CORE_SECTIONS}
    plugin_sections = {k: v for k, v in data.items() if k not in CORE_SECTIONS}
    for section, values in plugin_sections.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a table of settings, got {values!r}")
    try:
        return Settings(**core, plugins=plugin_sections, home=str(home), home_source=home_source,
                        config_files=tuple(str(f) for f in files))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        env_name = ENV_PREFIX + "_".join(str(p) for p in first["loc"]).upper()
        got = ""
        if "input" in first and first["type"] != "extra_forbidden":
            got = f", got {first['input']!r}"
        raise ConfigError(f"invalid setting {key} (env {env_name}): {first['msg']}{got}") from None
