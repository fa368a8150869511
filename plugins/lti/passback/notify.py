"""Telling a school's admins that grades to a platform stopped (the delivery engine
disabled its destination): the notifications plugin, when loaded (it is optional here)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from learnplat_identity.api import IDENTITY

from learnplat.plugin import current_tenant, utcnow

from ..models import PlatformRegistration

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

log = logging.getLogger(__name__)

NOTIFICATION_KIND = "lti_passback_disabled"


def _notifications_key() -> Any:
    try:
        from learnplat_notifications.api import NOTIFICATIONS
    except ImportError:
        return None
    return NOTIFICATIONS


def tell_admins(plugin: LtiPlugin, platform: PlatformRegistration | None, reason: str) -> None:
    """A notification to each admin of the school: passbacks to `platform` stopped."""
    runtime = plugin.runtime
    key = _notifications_key()
    name = platform.name if platform is not None else "a removed platform"
    if key is None or not runtime.has_service(key):
        log.warning("lti passback: grades to %s of %s stopped (%s); the notifications plugin "
                    "is not loaded: no admin told", name, current_tenant().slug, reason)
        return
    admins = runtime.service(IDENTITY).user_ids(role="admin")
    if admins:
        runtime.service(key).notify(
            admins, NOTIFICATION_KIND, "Grades to an LMS stopped",
            f"Grades to {name} stopped: {reason}. Check the platform registration (client "
            "id, token URL) and the platform's side, then send what failed again "
            "(POST /lti/passbacks/{id}/redeliver).",
            data={"platform_id": platform.id if platform is not None else None,
                  "reason": reason[:500]},
            source=f"lti:passback:disabled:{int(utcnow().timestamp())}")
