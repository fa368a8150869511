"""The plugin in four parts, each in its own package, combined by LtiPlugin: platform/
(tool registrations, launches, Deep Linking), advantage/ (the token endpoint, AGS, NRPS and
the scores received), tool/ (platform registrations, launches into learnplat, Deep Linking
responses) and passback/ (grades sent back to platforms). A part says what it adds with an
`Area`; what they share is the plugin object (`LtiPlugin`: runtime, keys, urls, peers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import EventHandler, Permission, ProblemCode, Route, Sink, TaskSpec

if TYPE_CHECKING:
    from learnplat.plugin import Event

    from .plugin import LtiPlugin


@dataclass
class Area:
    models: tuple[type, ...] = ()
    permissions: list[Permission] = field(default_factory=list)
    problems: dict[str, ProblemCode] = field(default_factory=dict)
    events: list[type[Event]] = field(default_factory=list)
    # Built once the runtime is: the part's routes, event handlers, sinks and tasks.
    routes: Callable[[LtiPlugin], list[Route]] = lambda plugin: []
    handlers: Callable[[LtiPlugin], list[EventHandler]] = lambda plugin: []
    sinks: Callable[[LtiPlugin], list[Sink]] = lambda plugin: []
    tasks: list[TaskSpec] = field(default_factory=list)
    # Commands added to `learnplat lti` (click groups or commands).
    commands: list[click.Command] = field(default_factory=list)
    # course_analytics sections (course id -> dict) merged into the course's analytics.
    analytics: Callable[[LtiPlugin, int], dict[str, Any] | None] = lambda plugin, cid: None
