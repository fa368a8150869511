"""The xAPI plugin's object: its hooks, and its service once the runtime is built (the class
its entry point names)."""

from __future__ import annotations

from collections.abc import Callable
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
    ServiceKey,
    Sink,
    hookimpl,
)

from . import resources as r
from .cli import xapi
from .models import MODELS
from .services import HANDLERS, XapiService, XapiSink

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


class XapiPlugin(Plugin):
    """Learning events as xAPI statements sent to the school's learning record store."""

    requires = ("identity", "courses", "enrollment")
    problems = {
        "lrs_not_configured": ProblemCode(
            404, "The school has no learning record store: an admin sets one with "
                 "`PUT /xapi/lrs` (or `learnplat xapi configure`)."),
    }
    xapi: XapiService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("xapi.manage", "Configure the school's learning record store, read "
                                          "the statements' log and redeliver",
                           {"admin": "any"})]

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.xapi = XapiService(runtime)
        return {}

    @hookimpl
    def register_encrypted_at_rest(self) -> list[EncryptedAtRest]:
        # The LRS's Basic-authentication secret: undecryptable, nothing reaches the LRS.
        return [EncryptedAtRest("learning record store secrets", lambda rt: self.xapi.scan(),
                                lambda rt: self.xapi.reencrypt())]

    @hookimpl
    def register_sinks(self, runtime: Runtime) -> list[Sink]:
        return [XapiSink(self.xapi)]

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.xapi
        one = "/xapi/statements/{statement_id:int}"
        return [
            Route("/xapi/lrs", r.LrsResource(svc)),
            Route("/xapi/statements", r.StatementsResource(svc)),
            Route("/xapi/statements/redeliver", r.RedeliverRange(svc)),
            Route(one, r.StatementResource(svc)),
            Route(f"{one}/redeliver", r.RedeliverOne(svc)),
        ]

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        # Every event by name with the model of the fields read: the quizzes, media and
        # certificates plugins (and the video milestones) may be absent.
        return [EventHandler(event, name, self._handler(build), optional=True,
                             payload=payload) for event, name, payload, build in HANDLERS]

    def _handler(self, build: Callable[..., dict[str, Any]]
                 ) -> Callable[[Runtime, EventMessage[Any]], None]:
        def handle(runtime: Runtime, event: EventMessage[Any]) -> None:
            # An enrollment's own event names it; the others find it by course and learner.
            enrollment_id = getattr(event.data, "enrollment_id", None)
            self.xapi.handle(build, event, enrollment_id)

        return handle

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(xapi)
