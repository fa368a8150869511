"""API rate limits on every route: budgets per user, per tenant and per anonymous address.

Each budget is a GCRA bucket (decision 0012): `rate` units per second refill it, up to `burst`
units at once. A request costs its endpoint's declared `cost` (1 unless it says more) from the
caller's budget (`api`, or `heartbeat` for video playback, so neither starves the other) and
from its tenant's budget (all its users and visitors together). Anonymous callers pay from
their client address's budget instead of a user's; a request through a URL signed for a user
(a media URL: EndpointSpec.signed_caller) pays as that user, so a class behind one NAT address
does not share one visitor's budget.

The counting is one atomic step in the key-value store, done in the same round trip as the
authentication's reads (`Limiter.round_trip`): one Redis script per request, which also
reads Redis's clock, so processes with skewed clocks count alike. A refused request charges
nothing. If the store cannot be reached, requests are not limited (fail open, logged).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .client_address import rate_limit_key
from .gcra import Check, Decision, Rate

if TYPE_CHECKING:
    from .kv import KeyValueStore
    from .settings import LimitSettings
    from .tenancy import TenantInfo

log = logging.getLogger(__name__)

Budget = Literal["api", "heartbeat"]
BUDGETS: tuple[str, ...] = ("api", "heartbeat")


class Overrides(BaseModel):
    """A school's own limits (tenant setting section ``limits``): any subset of the [limits]
    keys; a key not given keeps the configuration's. Validated by `tenants apply` (strict: a
    quoted "50" would be ignored by `Limiter.effective`, so it is refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    user_rate: float | None = Field(
        None, gt=0, description="Requests per second a signed-in user's budget refills.")
    user_burst: int | None = Field(
        None, gt=0, description="Requests a signed-in user may make at once.")
    heartbeat_rate: float | None = Field(
        None, gt=0, description="Video heartbeats per second a user's own budget refills.")
    heartbeat_burst: int | None = Field(
        None, gt=0, description="Video heartbeats a user may send at once.")
    tenant_rate: float | None = Field(
        None, gt=0, description="Requests per second the whole school's budget refills.")
    tenant_burst: int | None = Field(
        None, gt=0, description="Requests the whole school may make at once.")
    anonymous_rate: float | None = Field(
        None, gt=0, description="Requests per second an anonymous address's budget refills.")
    anonymous_burst: int | None = Field(
        None, gt=0, description="Requests an anonymous address may make at once.")


class Limiter:
    """Plans the checks of a request and runs them with the store (see the module doc)."""

    def __init__(self, settings: LimitSettings, store: KeyValueStore):
        self.settings = settings
        self.store = store
        self._warned_at = 0.0

    def effective(self, tenant: TenantInfo | None) -> dict[str, float | int]:
        """The limits in force for a tenant: configuration overlaid with its overrides."""
        values: dict[str, float | int] = {
            name: getattr(self.settings, name) for name in Overrides.model_fields}
        raw = tenant.setting("limits") if tenant is not None else None
        if isinstance(raw, dict):
            for name, value in raw.items():
                if name in values and isinstance(value, (int, float)) and value > 0:
                    values[name] = value
        return values

    def checks(self, tenant: TenantInfo | None, user_id: Any, address: str | None,
               budget: str, cost: int) -> list[Check]:
        if not self.settings.enabled:
            return []
        lim = self.effective(tenant)
        out: list[Check] = []
        if user_id is not None and tenant is not None:
            prefix = "heartbeat" if budget == "heartbeat" else "user"
            out.append(Check(f"lim:u:{tenant.id}:{user_id}:{prefix}", prefix,
                             Rate(lim[f"{prefix}_rate"], int(lim[f"{prefix}_burst"])), cost))
        else:
            # IPv6 callers count per /64, as one IPv4 NAT address (the identity limits too).
            where = rate_limit_key(address) if address else "-"
            out.append(Check(f"lim:a:{where}", "anonymous",
                             Rate(lim["anonymous_rate"], int(lim["anonymous_burst"])), cost))
        if tenant is not None:
            out.append(Check(f"lim:t:{tenant.id}", "tenant",
                             Rate(lim["tenant_rate"], int(lim["tenant_burst"])), cost))
        return out

    def round_trip(self, reads: Sequence[str], checks: Sequence[Check]
                   ) -> tuple[list[str | None], list[Decision]]:
        """Read `reads` and charge `checks` in one step. Raises the store's error when it is
        unreachable: the caller decides (limits fail open; see `fail_open`)."""
        return self.store.round_trip(reads, checks)

    def fail_open(self, exc: Exception) -> list[Decision]:
        now = time.monotonic()
        if now - self._warned_at > 10:  # one line per 10 s, not one per request
            self._warned_at = now
            log.warning("rate limits not enforced: key-value store unreachable (%s)", exc)
        return []


def headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """RateLimit-Policy lists every budget the request was counted against; RateLimit gives
    the one closest to refusing (draft-ietf-httpapi-ratelimit-headers: q quota, w window,
    r remaining, t seconds until the quota is whole again)."""
    if not decisions:
        return {}
    policy = ", ".join(f'"{d.policy}";q={d.rate.burst};w={d.rate.window}' for d in decisions)
    tightest = min(decisions, key=lambda d: (d.allowed, d.remaining))
    return {
        "RateLimit-Policy": policy,
        "RateLimit": f'"{tightest.policy}";r={tightest.remaining};t={math.ceil(tightest.reset)}',
    }


def refused(decisions: Sequence[Decision]) -> Decision | None:
    worst = [d for d in decisions if not d.allowed]
    return max(worst, key=lambda d: d.retry_after) if worst else None
