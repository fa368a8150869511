"""What this part of the LTI plugin adds (see plugins/lti/areas.py): the passback sink, the
event handlers that queue scores, /lti/passbacks and `learnplat lti passbacks`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat.plugin import EventHandler, EventMessage, Permission, ProblemCode, Route, Sink

from ..areas import Area
from . import resources as r
from .cli import passbacks
from .events import EVENTS
from .services import READ, REDELIVER, PassbackService, handlers_of
from .sink import LtiPassbackSink

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from ..plugin import LtiPlugin


def _routes(plugin: LtiPlugin) -> list[Route]:
    svc = PassbackService(plugin)
    one = "/lti/passbacks/{passback_id:int}"
    return [Route("/lti/passbacks", r.PassbacksResource(svc)),
            Route(one, r.PassbackResource(svc)),
            Route(f"{one}/redeliver", r.RedeliverPassback(svc))]


def _handler(method: Any) -> Any:
    def handle(runtime: Runtime, event: EventMessage[Any]) -> None:
        method(event)

    return handle


def _handlers(plugin: LtiPlugin) -> list[EventHandler]:
    # By name with the fields read: the quizzes plugin is optional.
    return [EventHandler(event, name, _handler(method), optional=True, payload=payload)
            for event, name, payload, method in handlers_of(PassbackService(plugin))]


def _sinks(plugin: LtiPlugin) -> list[Sink]:
    return [LtiPassbackSink(plugin)]


PROBLEMS: dict[str, ProblemCode] = {}

AREA = Area(
    permissions=[
        Permission(READ, "Read the grades sent back to LTI platforms and their attempts",
                   {"admin": "any", "instructor": "own"}),
        Permission(REDELIVER, "Send a grade back to an LTI platform again",
                   {"admin": "any", "instructor": "own"}),
    ],
    problems=PROBLEMS,
    routes=_routes,
    handlers=_handlers,
    sinks=_sinks,
    commands=[passbacks],
    events=list(EVENTS),
)
