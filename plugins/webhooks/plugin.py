"""The webhooks plugin's object: its hooks, and its service once the runtime is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import (
    EncryptedAtRest,
    EventHandler,
    EventMessage,
    Permission,
    Plugin,
    ProblemCode,
    Route,
    SecretScan,
    Sink,
    hookimpl,
)

from . import openapi
from . import resources as r
from .cli import webhooks as webhooks_cli
from .models import MODELS, EndpointSecret
from .services import WebhooksService
from .settings import WebhooksTenantSettings
from .sink import WebhookSink

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


class WebhooksPlugin(Plugin):
    """A school's webhook endpoints: each receives the events it subscribes to, signed in the
    Standard Webhooks format, retried for about three days, every attempt logged."""

    requires = ("identity",)
    tenant_settings = WebhooksTenantSettings  # [settings.webhooks] of a school
    problems = {
        "no_endpoint": ProblemCode(404, "No webhook endpoint with this id in this school."),
        "no_delivery": ProblemCode(404, "No webhook delivery with this id in this school."),
        "too_many_endpoints": ProblemCode(
            409, "The school has as many webhook endpoints as it may (tenant setting "
            "`webhooks.max_endpoints`, 20 by default): delete one, or subscribe an existing "
            "endpoint to more event types."),
        "endpoint_disabled": ProblemCode(
            409, "The endpoint is disabled: enable it (PATCH with `enabled: true`) first."),
    }
    webhooks: WebhooksService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[Any, Any]:
        self.webhooks = WebhooksService(runtime)
        return {}

    @hookimpl
    def register_encrypted_at_rest(self) -> list[EncryptedAtRest]:
        return [EncryptedAtRest("webhook signing secrets", lambda rt: self._scan(),
                                lambda rt: self._reencrypt())]

    def _scan(self) -> SecretScan:
        return self.webhooks.store.scan([s.secret for s in EndpointSecret.select()])

    def _reencrypt(self) -> int:
        rewritten = 0
        for row in EndpointSecret.select():
            token = self.webhooks.store.box.reencrypt(row.secret)
            if token is not None:
                row.secret = token
                row.save()
                rewritten += 1
        return rewritten

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("webhooks.manage", "Manage the school's webhook endpoints, read "
                                              "their delivery log and redeliver",
                           {"admin": "any"})]

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.webhooks
        e = "/webhooks/endpoints/{endpoint_id:int}"
        d = "/webhooks/deliveries/{delivery_id:int}"
        return [
            Route("/webhooks/endpoints", r.EndpointCollection(svc)),
            Route(e, r.EndpointResource(svc)),
            Route(f"{e}/rotate-secret", r.RotateSecret(svc)),
            Route(f"{e}/deliveries", r.EndpointDeliveries(svc)),
            Route(f"{e}/redeliver", r.RedeliverRange(svc)),
            Route(f"{e}/test", r.TestPing(svc)),
            Route(d, r.DeliveryResource(svc)),
            Route(f"{d}/redeliver", r.RedeliverOne(svc)),
            Route("/webhooks/event-types", r.EventTypes(svc)),
        ]

    @hookimpl
    def register_sinks(self, runtime: Runtime) -> list[Sink]:
        return [WebhookSink(self.webhooks)]

    def on_event(self, runtime: Runtime, event: EventMessage[Any]) -> None:
        self.webhooks.fan_out(runtime, event)

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        # Every event: the fan-out keeps the published ones its endpoints subscribe to.
        return [EventHandler("*", "fan_out", self.on_event)]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(webhooks_cli)

    @hookimpl
    def extend_openapi(self, document: dict[str, Any]) -> None:
        # The document's top-level `webhooks` (OpenAPI 3.1): what an endpoint receives.
        openapi.describe(self.runtime, document)
