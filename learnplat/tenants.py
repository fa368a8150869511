"""Tenant service: lookups for the request path (cached briefly) and operator changes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import db
from .errors import Conflict, NotFound, ValidationFailed
from .models import Tenant, TenantDomain, utcnow
from .registry import TenantSection, tenant_sections
from .tenancy import TenantInfo

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


class CorsSettings(BaseModel):
    """Tenant setting section ``cors``: which browser origins may call the API."""

    model_config = ConfigDict(extra="forbid", strict=True)
    origins: list[str] | None = Field(
        None, description='Origins allowed to call the API from a browser '
                          '("https://app.school.example"), "*" for any. None: no cross-origin '
                          "calls.")


class ApiSettings(BaseModel):
    """Tenant setting section ``api``: the school's view of the API."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reference: bool | None = Field(
        None, description="false hides the API reference page (/docs) for this school; "
                          "expected true or false. None: shown.")


def core_sections() -> dict[str, type[BaseModel]]:
    """The sections of a school's settings the core reads (plugins declare theirs with
    `Plugin.tenant_settings`)."""
    from .ratelimit import Overrides

    return {"api": ApiSettings, "cors": CorsSettings, "limits": Overrides}


def _message(err: Any, model: type[BaseModel], path: tuple[Any, ...]) -> str:
    """A pydantic error as an operator reads it: an undeclared key names the known ones."""
    kind = err["type"]
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected a table"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if path and path[-1] == "[key]":
        return f"not a valid name: {err['msg']}"
    if kind != "extra_forbidden":
        return str(err["msg"])
    # The model that refused the key: walk down the nested models (a dict's values are one
    # level further down: its keys are names, not fields).
    models: list[tuple[str, type[BaseModel]]] = [("", model)]
    for part in path[:-1]:
        here = models[0] if models else None
        if here is None:
            break
        suffix, current = here
        if suffix.startswith(".<name>"):  # this part is the name of a dict entry
            models = [(suffix[len(".<name>"):], current)]
            continue
        field = current.model_fields.get(str(part))
        models = _models_in(field.annotation) if field is not None else []
    if not models or models[0][0]:
        return "unknown key"
    known = sorted(f.alias or n for n, f in models[0][1].model_fields.items())
    return f"unknown key (known: {', '.join(known)})"


def settings_errors(settings: Any, sections: dict[str, TenantSection],
                    unknown_ok: bool = False) -> list[dict[str, str]]:
    """What is wrong with a school's settings tree, checked against the declared sections:
    one {field, message, type} per problem, `field` the dotted key (settings.a.b). A section
    nobody declares is refused naming the known ones, unless `unknown_ok` (the declaring
    plugins are not known here: only the core's sections are checked)."""
    if not isinstance(settings, dict):
        return [{"field": "settings", "message": "expected a table", "type": "invalid"}]
    errors = []
    for name, value in settings.items():
        section = sections.get(name)
        if section is None:
            if not unknown_ok:
                errors.append({"field": f"settings.{name}", "type": "unknown", "message":
                               "unknown section: no loaded plugin declares it (known: "
                               f"{', '.join(sorted(sections))})"})
            continue
        try:
            section.model.model_validate(value)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                where = [str(p) for p in loc if p != "[key]"]
                errors.append({"field": ".".join(["settings", name, *where]),
                               "message": _message(err, section.model, loc),
                               "type": "unknown" if err["type"] == "extra_forbidden"
                               else "invalid"})
    return errors


def declared_keys(sections: dict[str, TenantSection]) -> list[tuple[str, str]]:
    """Every key the sections declare, dotted (``notifications.smtp.host``; a table of any
    names shows as ``<name>``: ``oauth.providers.<name>``), with its description: the list
    docs/configuration.md gives (a test keeps the two together)."""
    out: list[tuple[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}.{info.alias or name}"
            out.append((key, info.description or ""))
            for inner in _models_in(info.annotation):
                walk(inner[1], key + inner[0])

    for section in sorted(sections.values(), key=lambda s: s.name):
        walk(section.model, section.name)
    return out


def _models_in(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The nested models of a field's type, each with the path suffix leading to it: "" for
    a model (or an optional one), ".<name>" for the values of a dict."""
    from typing import get_args, get_origin

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    found: list[tuple[str, type[BaseModel]]] = []
    if get_origin(annotation) is dict:
        for suffix, model in _models_in(get_args(annotation)[1]):
            found.append((".<name>" + suffix, model))
        return found
    for arg in get_args(annotation):  # X | None
        found += _models_in(arg)
    return found


class TenantSpec(BaseModel):
    """A declarative tenant, as written in tenants/<slug>.toml. Its settings' core sections
    are checked here; the plugins' sections when a TenantService writes it (it knows the
    loaded plugins)."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG_RE.pattern)
    name: str = Field(min_length=1, max_length=200)
    domains: list[str] = []
    enabled: bool = True
    disabled_plugins: list[str] = []
    settings: dict[str, Any] = {}

    @field_validator("settings")
    @classmethod
    def _core_sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        core = tenant_sections(core_sections(), [])
        if errors := settings_errors(value, core, unknown_ok=True):
            raise ValueError(f"{errors[0]['field']}: {errors[0]['message']}")
        return value


def _info(row: Tenant, domains: Iterable[str]) -> TenantInfo:
    return TenantInfo(
        id=row.id,
        slug=row.slug,
        name=row.name,
        domains=tuple(sorted(domains)),
        enabled=row.enabled,
        disabled_plugins=frozenset(row.disabled_plugins or ()),
        settings=row.settings or {},
    )


_CACHE_MAX = 10_000  # tenant lookups a process keeps (hits and misses)


class TenantService:
    def __init__(self, cache_seconds: float = 5.0):
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, Any], tuple[float, TenantInfo | None]] = {}
        self._lock = threading.Lock()
        # The plugin manager whose plugins declare the settings sections (bind_plugins);
        # None: only the core's sections are known, and others are not checked.
        self._plugins: Any = None

    # -- what a school's settings may say ----------------------------------------------------

    def bind_plugins(self, pm: Any) -> None:
        """Check settings against the sections of `pm`'s plugins (their
        `Plugin.tenant_settings`) from now on: the runtime's plugin manager. A section two
        owners declare is a StartupError here, as the runtime is built."""
        self._plugins = pm
        self.sections()

    def sections(self) -> dict[str, TenantSection]:
        """The declared sections: the core's and each loaded plugin's."""
        plugins = list(self._plugins.list_name_plugin()) if self._plugins is not None else []
        return tenant_sections(core_sections(), plugins)

    def check_settings(self, settings: Any) -> None:
        """Raise ValidationFailed naming every wrong key (settings.a.b) of a school's settings:
        a value of the wrong type, a key its section's owner does not declare, a section no
        one declares. Called before anything is written."""
        errors = settings_errors(settings, self.sections(), unknown_ok=self._plugins is None)
        if errors:
            raise ValidationFailed(errors, detail="invalid tenant settings: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in errors[:5]))

    # -- lookups (request path) --------------------------------------------------------------

    def _cached(self, key: tuple[str, Any], load: Any) -> TenantInfo | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                # Lookups of names that do not exist (any X-Tenant, Host or issuer slug a
                # client makes up) are cached too: drop what has expired, else everything,
                # so that the cache never grows with them.
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
            self._cache[key] = (now + self.cache_seconds, value)
        return value

    def _load(self, *where: Any) -> TenantInfo | None:
        row = Tenant.select().where(*where).first()
        if row is None:
            return None
        domains = [d.domain for d in TenantDomain.select().where(TenantDomain.tenant == row.id)]
        return _info(row, domains)

    def get_by_slug(self, slug: str) -> TenantInfo | None:
        if "\x00" in slug:  # names no school; PostgreSQL would refuse the parameter (a 500)
            return None
        return self._cached(("slug", slug), lambda: self._load(Tenant.slug == slug))

    def get_by_id(self, tenant_id: int) -> TenantInfo | None:
        return self._cached(("id", tenant_id), lambda: self._load(Tenant.id == tenant_id))

    def get_by_domain(self, host: str) -> TenantInfo | None:
        host = host.split(":", 1)[0].lower()
        if "\x00" in host:
            return None

        def load() -> TenantInfo | None:
            row = TenantDomain.select().where(TenantDomain.domain == host).first()
            return self._load(Tenant.id == row.tenant_id) if row else None

        return self._cached(("domain", host), load)

    def select(self, slug: str | None, host: str | None, host_only: bool = False
               ) -> TenantInfo | None:
        """The school a request names: its `X-Tenant` slug, else its Host's domain. With
        `host_only` (setting `tenancy.select_by = "host"`) only the Host names it, so one
        school's domain never serves another school; a slug that names another school than
        the host's then names none. Enabled or not: the caller decides."""
        slug = slug.strip().lower() if slug else None
        if host_only:
            tenant = self.get_by_domain(host) if host else None
            if tenant is not None and slug and slug != tenant.slug:
                return None
            return tenant
        if slug:
            return self.get_by_slug(slug)
        return self.get_by_domain(host) if host else None

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- operator changes (CLI) ----------------------------------------------------------------

    def list(self) -> list[TenantInfo]:
        rows = list(Tenant.select().order_by(Tenant.slug))
        domains: dict[int, list[str]] = {}
        for d in TenantDomain.select():
            domains.setdefault(d.tenant_id, []).append(d.domain)
        return [_info(r, domains.get(r.id, [])) for r in rows]

    def require(self, slug: str) -> TenantInfo:
        self.invalidate()
        tenant = self.get_by_slug(slug)
        if tenant is None:
            raise NotFound(f"no tenant {slug!r}")
        return tenant

    def create(self, spec: TenantSpec) -> TenantInfo:
        self.check_settings(spec.settings)
        with db.transaction():
            if Tenant.select().where(Tenant.slug == spec.slug).exists():
                raise Conflict(f"tenant {spec.slug!r} exists")
            row = Tenant.create(
                slug=spec.slug, name=spec.name, enabled=spec.enabled,
                disabled_plugins=spec.disabled_plugins, settings=spec.settings,
            )
            self._set_domains(row, spec.domains)
        self.invalidate()
        return self.require(spec.slug)

    def apply(self, spec: TenantSpec) -> tuple[str, TenantInfo]:
        """Create or update a tenant to match `spec`; returns ("created"|"updated"|"unchanged").
        Its settings are checked first (ValidationFailed: nothing written)."""
        self.check_settings(spec.settings)
        with db.transaction():
            row = Tenant.select().where(Tenant.slug == spec.slug).first()
            if row is None:
                return "created", self.create(spec)
            current = self.require(spec.slug)
            wanted = (spec.name, spec.enabled, frozenset(spec.disabled_plugins), spec.settings,
                      tuple(sorted(d.lower() for d in spec.domains)))
            have = (current.name, current.enabled, current.disabled_plugins, current.settings,
                    current.domains)
            if wanted == have:
                return "unchanged", current
            row.name, row.enabled = spec.name, spec.enabled
            row.disabled_plugins, row.settings = spec.disabled_plugins, spec.settings
            row.updated_at = utcnow()
            row.save()
            self._set_domains(row, spec.domains)
        self.invalidate()
        return "updated", self.require(spec.slug)

    def set_enabled(self, slug: str, enabled: bool) -> TenantInfo:
        with db.transaction():
            n = (Tenant.update(enabled=enabled, updated_at=utcnow())
                 .where(Tenant.slug == slug).execute())
        if not n:
            raise NotFound(f"no tenant {slug!r}")
        self.invalidate()
        return self.require(slug)

    def _set_domains(self, row: Tenant, domains: Iterable[str]) -> None:
        wanted = {d.lower() for d in domains}
        for d in wanted:
            if not DOMAIN_RE.match(d):
                raise ValidationFailed.field("domains", f"{d!r} is not a host name")
            other = TenantDomain.select().where(TenantDomain.domain == d).first()
            if other and other.tenant_id != row.id:
                raise Conflict(f"domain {d!r} belongs to another tenant")
        TenantDomain.delete().where(
            (TenantDomain.tenant == row.id) & TenantDomain.domain.not_in(list(wanted) or [""])
        ).execute()
        have = {d.domain for d in TenantDomain.select().where(TenantDomain.tenant == row.id)}
        for d in sorted(wanted - have):
            TenantDomain.create(tenant=row.id, domain=d)
