"""Tenant service: lookups for the request path (cached briefly) and operator changes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import db
from .errors import Conflict, NotFound, ValidationFailed
from .models import Tenant, TenantDomain, utcnow
from .tenancy import TenantInfo

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


class TenantSpec(BaseModel):
    """A declarative tenant, as written in tenants/<slug>.toml."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG_RE.pattern)
    name: str = Field(min_length=1, max_length=200)
    domains: list[str] = []
    enabled: bool = True
    disabled_plugins: list[str] = []
    settings: dict[str, Any] = {}

    @field_validator("settings")
    @classmethod
    def _known_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        from .http.reference import check_tenant_settings
        from .ratelimit import check_overrides

        if problem := check_overrides(value.get("limits")) or check_tenant_settings(value):
            raise ValueError(problem)
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
        """Create or update a tenant to match `spec`; returns ("created"|"updated"|"unchanged")."""
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
