"""The LTI plugin's object: the hooks of its four parts (areas.py) and what they share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import (
    EncryptedAtRest,
    EventHandler,
    Permission,
    Plugin,
    ProblemCode,
    Route,
    ServiceKey,
    Sink,
    TaskSpec,
    hookimpl,
    merge_extras,
)

from . import resources as r
from .advantage.area import AREA as ADVANTAGE
from .areas import Area
from .cli import lti as lti_cli
from .keys import LtiKeys
from .models import MODELS
from .pages import launch_problem
from .passback.area import AREA as PASSBACK
from .peers import PeerKeys
from .platform.area import AREA as PLATFORM
from .tool.area import AREA as TOOL
from .urls import PREFIX, SCHOOL, LtiUrls

if TYPE_CHECKING:
    from learnplat.plugin import Event, Runtime

AREAS: tuple[Area, ...] = (PLATFORM, ADVANTAGE, TOOL, PASSBACK)


def _problems() -> dict[str, ProblemCode]:
    out: dict[str, ProblemCode] = {
        "public_url_not_set": ProblemCode(
            503, "LTI peers must be given absolute URLs and the API's public address is not "
                 "known: set app.public_url (LEARNPLAT_APP_PUBLIC_URL).",
            title="The public URL of the API is not set"),
        "lti_bad_request": launch_problem(
            "An LTI request could not be read (a missing or malformed parameter); the detail "
            "names it."),
    }
    for area in AREAS:
        out.update(area.problems)
    return out


class LtiPlugin(Plugin):
    """LTI 1.3 Advantage in both roles: external tools in the school's courses, the
    school's courses in another LMS."""

    requires = ("identity", "courses", "enrollment", "progress")
    problems = _problems()
    # Built by register_services: what the parts share.
    runtime: Runtime
    keys: LtiKeys
    urls: LtiUrls
    peers: PeerKeys

    @hookimpl
    def register_models(self) -> list[type]:
        return [*MODELS, *(m for area in AREAS for m in area.models)]

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("lti.manage", "Register LTI tools and platforms for the school, "
                                         "read its LTI addresses and keys",
                           {"admin": "any"}),
                *(p for area in AREAS for p in area.permissions)]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return [e for area in AREAS for e in area.events]

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.runtime = runtime
        self.keys = LtiKeys(runtime)
        self.urls = LtiUrls(runtime)
        self.peers = PeerKeys(runtime)
        return {}

    @hookimpl
    def register_encrypted_at_rest(self) -> list[EncryptedAtRest]:
        # The private halves of the school's LTI keys.
        return [EncryptedAtRest("LTI signing keys", lambda rt: self.keys.ring.scan(),
                                lambda rt: self.keys.ring.reencrypt())]

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        own = [
            Route(f"{PREFIX}/jwks", r.JwksResource(self), tenant_param=SCHOOL),
            Route("/lti/config", r.ConfigResource(self)),
        ]
        return own + [route for area in AREAS for route in area.routes(self)]

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [h for area in AREAS for h in area.handlers(self)]

    @hookimpl
    def register_sinks(self, runtime: Runtime) -> list[Sink]:
        return [s for area in AREAS for s in area.sinks(self)]

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return [t for area in AREAS for t in area.tasks]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        for area in AREAS:
            for command in area.commands:
                lti_cli.add_command(command)
        cli.add_command(lti_cli)

    @hookimpl
    def course_analytics(self, runtime: Runtime, course_id: int) -> dict[str, Any] | None:
        answers = [area.analytics(self, course_id) for area in AREAS]
        return merge_extras(answers) or None
