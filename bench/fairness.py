"""The `fairness` scenario of bin/bench (issue 16): one tenant floods the API, another keeps
its latency.

* The FLOODING tenant gets its own, low tenant budget through its tenant settings
  (`settings.limits.tenant_rate` / `tenant_burst`, applied with the runtime's tenant service
  before the server starts: the server caches tenants for 60 s).
* The VICTIM tenant keeps the bench configuration's budgets (beyond the load).
* A paced client (`paced`) sends the victim's requests at a fixed rate, open loop (each
  request is sent at its scheduled time by a pool of threads, whatever the previous ones
  take), first alone, then while wrk floods the server with the flooding tenant's students.

bench/run.py runs the server and wrk; this module holds the parts that are not wrk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import common


@dataclass
class Caller:
    tenant: str
    token: str
    courses: list[int]


def callers(runtime: Any, tenant: Any, n: int) -> list[Caller]:
    """Access tokens for up to `n` enrolled students of a seeded tenant (bench.seed's
    TenantData), issued by the identity service in-process."""
    from learnplat_identity.models import User

    from learnplat import db
    from learnplat.tenancy import tenant_context

    ident = runtime.service("identity")
    info = runtime.tenants.require(tenant.slug)
    out = []
    with db.connection(), tenant_context(info), db.transaction():
        for uid in [u for u in tenant.students if tenant.enrolled.get(u)][:n]:
            token = ident.issue_pair(User.get_by_id(uid))["access_token"]
            out.append(Caller(tenant.slug, token, sorted(tenant.enrolled[uid])))
    return out


@contextmanager
def tenant_limits(runtime: Any, slug: str, **limits: float) -> Iterator[dict[str, Any]]:
    """Set `settings.limits` of tenant `slug` (merged into its other settings) through the
    tenant service, as `learnplat tenants apply` does; put the previous settings back after."""
    from learnplat import db
    from learnplat.tenants import TenantSpec

    def apply(settings: dict[str, Any]) -> dict[str, Any]:
        with db.connection():
            cur = runtime.tenants.require(slug)
            runtime.tenants.apply(TenantSpec(
                slug=cur.slug, name=cur.name, domains=list(cur.domains), enabled=cur.enabled,
                disabled_plugins=sorted(cur.disabled_plugins), settings=settings))
            return dict(runtime.tenants.require(slug).settings)

    with db.connection():
        before = dict(runtime.tenants.require(slug).settings)
    merged = {**before, "limits": {**(before.get("limits") or {}), **limits}}
    try:
        yield apply(merged)
    finally:
        apply(before)
        common.close_pool()


def paced(base: str, who: list[Caller], rate: float, seconds: float,
          stop: threading.Event | None = None) -> dict[str, Any]:
    """GET /courses/{id} (a course the caller is enrolled in; callers rotated) `rate` times a
    second for `seconds`, open loop. Latency is from the moment a request is sent to the end
    of its answer (thread-local keep-alive sessions); `lag_max_ms` is how late the client
    itself sent a request (a busy client would hide latency: it should stay small)."""
    import requests

    local = threading.local()
    lock = threading.Lock()
    lat: list[float] = []
    status: dict[str, int] = {}
    lags: list[float] = []
    first_error: list[str] = []

    def one(i: int, due: float) -> None:
        c = who[i % len(who)]
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        headers = {"X-Tenant": c.tenant, "Authorization": f"Bearer {c.token}"}
        path = f"/courses/{c.courses[(i // len(who)) % len(c.courses)]}"
        t0 = time.perf_counter()
        try:
            r = s.get(base + path, headers=headers, timeout=30)
            code = str(r.status_code)
            if r.status_code >= 300 and not first_error:
                first_error.append(f"{code} {r.text[:300]}")
        except requests.RequestException as exc:
            code = "error"
            if not first_error:
                first_error.append(f"error {exc}"[:300])
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            lat.append(ms)
            status[code] = status.get(code, 0) + 1
            lags.append((t0 - due) * 1000)

    n = max(1, round(rate * seconds))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(n):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if stop is not None and stop.is_set():
                break
            pool.submit(one, i, due)
    elapsed = time.perf_counter() - start
    ok = sum(v for k, v in status.items() if k.startswith("2"))
    res = {"requests": len(lat), "per_second": round(len(lat) / elapsed, 1),
           "p50_ms": round(common.pct(lat, 0.50), 1), "p99_ms": round(common.pct(lat, 0.99), 1),
           "max_ms": round(max(lat, default=0.0), 1), "status": status,
           "non_2xx": len(lat) - ok, "lag_max_ms": round(max(lags, default=0.0), 1),
           "latencies_ms": [round(x, 2) for x in lat]}
    if first_error:
        res["first_error"] = first_error[0]
    return res
