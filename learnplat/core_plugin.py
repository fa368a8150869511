"""The core's own contributions, registered like any plugin: health, readiness, the OpenAPI
document and the reference page, the event bus's tasks, and the catalogue of the plugins'
problem codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon
from pydantic import BaseModel, ConfigDict, Field

from .auth import PUBLIC
from .events import event_tasks
from .hookspecs import hookimpl
from .http import reference
from .http.endpoint import endpoint
from .idempotency import idempotency_tasks
from .models import CORE_MODELS
from .outbound.engine import outbound_tasks
from .outbound.models import OUTBOUND_MODELS
from .registry import Route, TaskSpec

if TYPE_CHECKING:
    from .runtime import Runtime

# The reference page's group of the core's operations (an OpenAPI tag; learnplat.http.reference).
description = ("The server itself: liveness and readiness probes, the OpenAPI document and "
               "this reference page.")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok",
        "checks": {"database": "ok", "queue": "ok", "storage": "ok", "cache": "ok"}}]})

    status: str
    checks: dict[str, str]


_ALIVE = Health(status="ok")  # made once: the liveness probe is the floor of every benchmark


class HealthResource:
    @endpoint(permission=PUBLIC, response=Health, rate_limited=False,
              summary="Liveness: the process answers")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Health:
        return _ALIVE


class ReadyResource:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @endpoint(permission=PUBLIC, response=Readiness, errors=(503,), rate_limited=False,
              summary="Readiness: 503 when the database or a plugin check fails; 200 "
                      "'degraded' when only Redis (queue, cache) or the store is unreachable")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Readiness:
        from . import db

        rt = self.runtime
        checks: dict[str, Any] = {
            "database": lambda: _db_ping(db),
            "queue": rt.queue.ping,
            "storage": rt.storage.ping,
            "cache": rt.kv.ping,
        }
        for check in rt.registry.health_checks:
            checks[check.name] = lambda c=check: c.fn(rt)
        results: dict[str, str] = {}
        for name, fn in checks.items():
            try:
                fn()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"error: {type(exc).__name__}"
        failing = {name for name, value in results.items() if value != "ok"}
        # Redis and the object store are shared by every API process: when one of them is
        # down, all processes are equally affected and each still serves (degraded, measured in
        # docs/reliability.md). Failing readiness for them would make a load balancer take
        # every process out at once and turn a partial outage into a total one.
        if failing - _SHARED_DEGRADABLE:
            resp.status = 503
            status = "unavailable"
        else:
            status = "degraded" if failing else "ok"
        return Readiness(status=status, checks=results)


_SHARED_DEGRADABLE = frozenset({"queue", "cache", "storage"})


def _db_ping(db: Any) -> None:
    with db.connection():
        db.database.execute_sql("SELECT 1")


class OpenAPIResource:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._doc: bytes | None = None

    @endpoint(permission=PUBLIC, summary="The OpenAPI 3.1 document of every loaded route")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        import orjson

        from .http.openapi import build_document

        if self._doc is None:  # routes are fixed after start-up, so build once
            self._doc = orjson.dumps(build_document(self.runtime))
        resp.data = self._doc
        resp.content_type = "application/json"


@hookimpl
def register_models() -> list[type]:
    return [*CORE_MODELS, *OUTBOUND_MODELS]


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    return [
        Route("/healthz", HealthResource(), tenant_scoped=False),
        Route("/readyz", ReadyResource(runtime), tenant_scoped=False),
        Route("/openapi.json", OpenAPIResource(runtime), tenant_scoped=False),
        *reference.routes(runtime),
    ]


@hookimpl
def startup(runtime: Runtime) -> None:
    # The catalogue of problem types: each plugin's declared codes (Plugin.problems, or a
    # `problems` mapping in a module of hooks); a malformed one stops start-up.
    from .http.problems import title_of

    for name, obj in runtime.pm.list_name_plugin():
        declared = getattr(obj, "problems", None)
        if declared:
            runtime.registry.add_problems(name, declared, title_of)


@hookimpl
def register_tasks() -> list[TaskSpec]:
    return [*event_tasks(), *idempotency_tasks(), *outbound_tasks()]
