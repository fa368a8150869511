"""The xAPI plugin's domain logic: a school's LRS configuration (the secret encrypted at rest),
the statements made of learning events and queued on the delivery engine, the sink that sends
them in batches and reads the LRS's answers, and the delivery log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from learnplat_courses.api import COURSES
from learnplat_enrollment.api import ENROLLMENT
from learnplat_identity.api import IDENTITY

from learnplat.plugin import (
    Answer,
    DestinationInfo,
    EventMessage,
    MessageInfo,
    NotFound,
    OutboundRequest,
    SecretBox,
    SecretScan,
    Sink,
    TenantInfo,
    UnsafeURL,
    ValidationFailed,
    Verdict,
    current_tenant,
    utcnow,
)

from . import events as ev
from . import statements as st
from .models import LrsConfig

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)

SINK = "xapi"
REF = "lrs"  # one LRS per school: the engine's destination ref
XAPI_VERSION = "1.0.3"


class LrsNotConfigured(NotFound):
    """The school has no learning record store configured (``PUT /xapi/lrs`` sets one)."""

    code, title = "lrs_not_configured", "No learning record store configured"


def _needed(field: str, message: str) -> ValidationFailed:
    """A field the body may omit, except in this school now (no LRS yet: the secret; no
    domain nor public URL: the home page)."""
    return ValidationFailed([{"field": field, "message": message, "type": "needed_here"}])


def _notifications_key() -> Any:
    """The notifications plugin's service key, None when it is not installed."""
    try:
        from learnplat_notifications.api import NOTIFICATIONS
    except ImportError:
        return None
    return NOTIFICATIONS


def default_home_page(runtime: Runtime, tenant: TenantInfo) -> str:
    """The school's home page, the account actors' homePage: its first domain, else the API's
    public URL with the school's slug (schools share that URL, and a learner's account must
    not be confused with another school's user of the same id); "" when neither is known."""
    if tenant.domains:
        return f"https://{tenant.domains[0]}"
    public = runtime.settings.public_url_in_force().url
    return f"{public.rstrip('/')}/schools/{tenant.slug}" if public else ""


class XapiService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        # Its own derivation of app.secret_key: a leaked LRS secret box says nothing of the
        # other plugins' keys, and old secrets still decrypt (app.old_secret_keys).
        self.box = SecretBox(runtime.secret_keys, info=b"xapi-lrs-credentials")

    # -- configuration -------------------------------------------------------------------------

    def config(self) -> LrsConfig | None:
        return LrsConfig.select().first()

    def require_config(self) -> LrsConfig:
        row = self.config()
        if row is None:
            raise LrsNotConfigured("this school has no learning record store: PUT /xapi/lrs "
                                   "sets one")
        return row

    def configure(self, *, endpoint: str, key: str, secret: str | None,
                  actor: str | None = None, home_page: str | None = None,
                  language: str | None = None, enabled: bool | None = None) -> LrsConfig:
        """Create or replace the school's LRS. `secret` None keeps the stored one (required
        the first time); the endpoint is checked (unsafe_url: a private address, http where
        https is required, ...) before anything is written. Fields left None keep their value
        (or take the default on creation)."""
        try:
            url = self.runtime.outbound.check_url(endpoint).rstrip("/")
        except UnsafeURL as exc:  # named by this API's field
            raise UnsafeURL(exc.reason, exc.message, field="endpoint") from None
        row = self.config()
        if row is None and not secret:
            raise _needed("secret", "required when the learning record store is first set")
        home = home_page or (row.home_page if row is not None else "") or default_home_page(
            self.runtime, current_tenant())
        if not home:
            raise _needed("home_page", "the school has no domain and the server's public URL "
                                        "(app.public_url) is not set: give the school's home "
                                        "page")
        now = utcnow()
        fields: dict[str, Any] = {"endpoint": url, "key": key, "home_page": home,
                                  "updated_at": now}
        if secret:
            fields["secret"] = self.box.encrypt(secret.encode())
        if actor is not None:
            fields["actor_mode"] = actor
        if language is not None:
            fields["language"] = language
        if enabled is not None:
            fields["enabled"] = enabled
        if row is None:
            LrsConfig.insert(**fields, created_at=now).execute()
        else:
            LrsConfig.update(**fields).where(LrsConfig.id == row.id).execute()
        row = self.require_config()
        outbound = self.runtime.outbound
        outbound.ensure_destination(SINK, REF)
        if row.enabled:
            outbound.enable(SINK, REF)  # also after the engine disabled it: the admin fixed it
        else:
            outbound.disable(SINK, REF, "switched off by an admin")
        return row

    def set_enabled(self, enabled: bool) -> LrsConfig:
        row = self.require_config()
        LrsConfig.update(enabled=enabled, updated_at=utcnow()).where(
            LrsConfig.id == row.id).execute()
        if enabled:
            self.runtime.outbound.enable(SINK, REF)
        else:
            self.runtime.outbound.disable(SINK, REF, "switched off by an admin")
        return self.require_config()

    def remove(self) -> None:
        """Forget the LRS and every statement queued or logged for it."""
        self.require_config()
        LrsConfig.delete().execute()
        self.runtime.outbound.forget(SINK, REF)

    def destination(self) -> DestinationInfo | None:
        return self.runtime.outbound.destination(SINK, REF)

    def tell_admins(self, row: LrsConfig, reason: str) -> None:
        """A notification to each admin of the school (the notifications plugin, when
        loaded: it is optional here)."""
        key = _notifications_key()
        if key is None or not self.runtime.has_service(key):
            log.warning("xapi: the learning record store of %s was disabled (%s); the "
                        "notifications plugin is not loaded: no admin told",
                        current_tenant().slug, reason)
            return
        admins = self.runtime.service(IDENTITY).user_ids(role="admin")
        if admins:
            self.runtime.service(key).notify(
                admins, "lrs_disabled", "The learning record store was disabled",
                f"xAPI statements to {row.endpoint} stopped: {reason}. Fix the LRS or the "
                "credentials, switch it on again (PUT /xapi/lrs with enabled: true) and "
                "redeliver what failed (POST /xapi/statements/redeliver).",
                data={"endpoint": row.endpoint, "reason": reason[:500]},
                source=f"xapi:disabled:{int(utcnow().timestamp())}")

    def authorization(self, row: LrsConfig) -> str:
        secret = self.box.decrypt(row.secret).decode()
        token = base64.b64encode(f"{row.key}:{secret}".encode()).decode()
        return f"Basic {token}"

    # -- secrets at rest (register_encrypted_at_rest) ------------------------------------------

    def scan(self) -> SecretScan:
        scan = SecretScan()
        for row in LrsConfig.select(LrsConfig.secret):
            scan.add(self.box.state(row.secret))
        return scan

    def reencrypt(self) -> int:
        n = 0
        for row in LrsConfig.select():
            new = self.box.reencrypt(row.secret)
            if new is not None:
                LrsConfig.update(secret=new).where(LrsConfig.id == row.id).execute()
                n += 1
        return n

    # -- the delivery log ------------------------------------------------------------------------

    def log(self, *, statuses: Sequence[str] = (), event_type: str | None = None,
            since: dt.datetime | None = None, until: dt.datetime | None = None,
            before_id: int | None = None, limit: int = 50) -> list[MessageInfo]:
        return self.runtime.outbound.messages(
            SINK, REF, statuses=statuses, event_type=event_type, since=since, until=until,
            before_id=before_id, limit=limit)

    def entry(self, message_id: int) -> MessageInfo:
        info = self.runtime.outbound.message(SINK, message_id)
        if info is None:
            raise NotFound("no such statement in this school's log")
        return info

    def attempts(self, message_id: int) -> list[Any]:
        return list(self.runtime.outbound.attempts(message_id))

    def redeliver(self, *, ids: Sequence[int] | None = None, since: dt.datetime | None = None,
                  until: dt.datetime | None = None,
                  statuses: Sequence[str] = ("failed",)) -> list[MessageInfo]:
        self.require_config()
        return self.runtime.outbound.redeliver(
            SINK, REF, ids=ids, since=since, until=until, statuses=statuses)

    # -- statements of events ------------------------------------------------------------------

    def facts(self, row: LrsConfig, event: EventMessage[Any], course_id: int,
              user_id: int, enrollment_id: int | None = None) -> st.Facts | None:
        """What every statement of `event` needs; None when the learner is unknown (deleted
        since: there is no one to say it of)."""
        tenant = current_tenant()
        user = self.runtime.service(IDENTITY).user(user_id)
        if user is None:
            return None
        course = self.runtime.service(COURSES).get_course(course_id)
        if enrollment_id is None:
            enrollment = self.runtime.service(ENROLLMENT).get(course_id, user_id)
            enrollment_id = enrollment.id if enrollment is not None else None
        return st.Facts(
            school=tenant.slug, event_id=event.id, timestamp=event.created_at,
            base=row.home_page.rstrip("/"),
            actor=st.actor(cast(st.ActorMode, row.actor_mode), row.home_page, user_id,
                           user.email),
            language=row.language, course_id=course_id,
            course_title=course.title if course is not None else "",
            registration=(st.registration(tenant.slug, enrollment_id)
                          if enrollment_id is not None else None))

    def module_title(self, course_id: int, module_id: int) -> str:
        try:
            return self.runtime.service(COURSES).get_module(course_id, module_id).title
        except NotFound:
            return ""  # removed since: the statement keeps its IRI, without a name

    def queue(self, event: EventMessage[Any], statement: dict[str, Any]) -> bool:
        """Queue one statement (key: its id, so a repeated handler adds nothing)."""
        return bool(self.runtime.outbound.enqueue(
            SINK, REF, statement["id"], statement, event_id=event.id, event_type=event.name))

    def handle(self, build: Callable[[XapiService, st.Facts, Any], dict[str, Any]],
               event: EventMessage[Any], enrollment_id: int | None = None) -> None:
        """Make one statement of `event` with `build` (the school's configuration at this
        time) and queue it; nothing when the school has no enabled LRS."""
        row = self.config()
        if row is None or not row.enabled:
            return
        d = event.data
        facts = self.facts(row, event, d.course_id, d.user_id, enrollment_id)
        if facts is None:
            return
        self.queue(event, build(self, facts, d))


# What each event becomes (docs/xapi.md): (event name, handler name, payload model, builder).
def _registered(s: XapiService, f: st.Facts, d: ev.EnrollmentCreatedPayload) -> dict[str, Any]:
    return st.registered(f)


def _module_completed(s: XapiService, f: st.Facts, d: ev.ModuleCompletedPayload
                      ) -> dict[str, Any]:
    return st.module_completed(f, d.module_id, s.module_title(d.course_id, d.module_id))


def _video_progressed(s: XapiService, f: st.Facts, d: ev.VideoProgressedPayload
                      ) -> dict[str, Any]:
    return st.video_progressed(f, d.module_id, s.module_title(d.course_id, d.module_id),
                               d.milestone, d.duration_seconds)


def _quiz_submitted(s: XapiService, f: st.Facts, d: ev.QuizSubmittedPayload
                    ) -> dict[str, Any]:
    return st.quiz_attempted(f, d.quiz_id, s.module_title(d.course_id, d.module_id))


def _quiz_graded(s: XapiService, f: st.Facts, d: ev.QuizGradedPayload) -> dict[str, Any]:
    return st.quiz_graded(f, d.quiz_id, s.module_title(d.course_id, d.module_id), d.percent,
                          d.passed)


def _assignment_submitted(s: XapiService, f: st.Facts, d: ev.AssignmentSubmittedPayload
                          ) -> dict[str, Any]:
    return st.assignment_submitted(f, d.assignment_id, s.module_title(d.course_id,
                                                                      d.module_id))


def _assignment_graded(s: XapiService, f: st.Facts, d: ev.AssignmentGradedPayload
                       ) -> dict[str, Any]:
    return st.assignment_graded(f, d.assignment_id, s.module_title(d.course_id, d.module_id),
                                d.points, d.max_points)


def _course_completed(s: XapiService, f: st.Facts, d: ev.CourseCompletedPayload
                      ) -> dict[str, Any]:
    return st.course_completed(f)


def _certificate_earned(s: XapiService, f: st.Facts, d: ev.CertificateIssuedPayload
                        ) -> dict[str, Any]:
    return st.certificate_earned(f, d.certificate_id)


HANDLERS: list[tuple[str, str, type[Any], Callable[..., dict[str, Any]]]] = [
    (ev.ENROLLMENT_CREATED, "registered", ev.EnrollmentCreatedPayload, _registered),
    (ev.MODULE_COMPLETED, "module_completed", ev.ModuleCompletedPayload, _module_completed),
    (ev.VIDEO_PROGRESSED, "video_progressed", ev.VideoProgressedPayload, _video_progressed),
    (ev.QUIZ_SUBMITTED, "quiz_attempted", ev.QuizSubmittedPayload, _quiz_submitted),
    (ev.QUIZ_GRADED, "quiz_graded", ev.QuizGradedPayload, _quiz_graded),
    (ev.ASSIGNMENT_SUBMITTED, "assignment_submitted", ev.AssignmentSubmittedPayload,
     _assignment_submitted),
    (ev.ASSIGNMENT_GRADED, "assignment_graded", ev.AssignmentGradedPayload,
     _assignment_graded),
    (ev.COURSE_COMPLETED, "course_completed", ev.CourseCompletedPayload, _course_completed),
    (ev.CERTIFICATE_ISSUED, "certificate_earned", ev.CertificateIssuedPayload,
     _certificate_earned),
]


class XapiSink(Sink):
    """Statements to the school's LRS: up to `batch_size` in one ``POST <endpoint>/statements``
    (a JSON array), with xAPI's version header and Basic authentication."""

    name = SINK
    batch_size = 50

    def __init__(self, service: XapiService):
        self.service = service

    def request(self, destination: DestinationInfo, messages: Sequence[MessageInfo]
                ) -> OutboundRequest | None:
        row = self.service.config()
        if row is None:
            return None  # the LRS was removed: nothing to send them to
        body = json.dumps([m.payload for m in messages], separators=(",", ":")).encode()
        return OutboundRequest(
            url=f"{row.endpoint}/statements", body=body,
            headers={"Content-Type": "application/json",
                     "X-Experience-API-Version": XAPI_VERSION,
                     "Authorization": self.service.authorization(row)})

    def verdict(self, answer: Answer, messages: Sequence[MessageInfo]) -> Verdict:
        """2xx: stored. 409 for one statement: the LRS already holds a statement with its
        id, and only we make that id (our school, event and kind), so it is ours from an
        attempt whose answer was lost: delivered (xAPI: the LRS must not change it; a retry
        would get 409 forever). 400 for one statement: the LRS refuses it: rejected (failed,
        the log shows its answer; redeliverable once fixed). For a batch, 400 and 409 say
        nothing of which statement: split, each sent again alone at once and judged as above
        (see docs/xapi.md, "Batches"). 410: gone. 401/403
        (the admin fixes the credentials), 429, 5xx and no answer: retried on the
        schedule."""
        status = answer.status
        if answer.ok:
            return Verdict.DELIVERED
        if status == 409 and len(messages) == 1:
            return Verdict.DELIVERED
        if status == 400 and len(messages) == 1:
            return Verdict.REJECTED
        if status in (400, 409):
            return Verdict.SPLIT
        if status == 410:
            return Verdict.GONE  # the engine disables the LRS (and tells disabled() below)
        return Verdict.RETRY

    def disabled(self, destination: DestinationInfo, reason: str) -> None:
        """The engine gave up on the LRS (failing for days, or a 410): switch it off here too,
        so the admin sees it (GET /xapi/lrs) and switches it on again once it is fixed
        (statements of new events are not queued meanwhile), and tell the school's admins."""
        row = self.service.config()
        if row is None or not row.enabled:
            return  # removed, or switched off by an admin already
        LrsConfig.update(enabled=False, updated_at=utcnow()).execute()
        self.service.tell_admins(row, reason)
