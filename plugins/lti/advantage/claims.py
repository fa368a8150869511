"""The LTI Advantage claims of a launch (AGS endpoint, NRPS): what the platform's id_token
tells a tool about the services it may call for this course and module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import claims as c

if TYPE_CHECKING:
    from ..models import ToolRegistration
    from ..plugin import LtiPlugin


def launch_claims(plugin: LtiPlugin, tool: ToolRegistration, course_id: int,
                  module_id: int | None) -> dict[str, Any]:
    """The AGS endpoint and NRPS claims for a launch of `tool` in the course (and module),
    as the registration's scopes allow; {} when it has none. A module's launch makes its
    default line item (the first time) and names it in `lineitem`."""
    from .services import AGS_SCOPES, Advantage

    out: dict[str, Any] = {}
    ags = [s for s in AGS_SCOPES if s in tool.scopes]
    if ags:
        endpoint: dict[str, Any] = {"scope": ags, "lineitems": plugin.urls.lineitems(course_id)}
        if module_id is not None:
            row = Advantage(plugin).default_lineitem(tool, course_id, module_id)
            endpoint["lineitem"] = plugin.urls.lineitem(course_id, row.id)
        out[c.AGS_ENDPOINT] = endpoint
    if c.SCOPE_NRPS in tool.scopes:
        out[c.NRPS_CLAIM] = {"context_memberships_url": plugin.urls.memberships(course_id),
                             "service_versions": ["2.0"]}
    return out
