"""Domain logic of the notifications plugin: creating notifications (honouring preferences,
once per source), the notification centre, broadcasts and preferences. No Falcon here."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from learnplat_courses.api import COURSES
from learnplat_enrollment.api import ENROLLMENT
from learnplat_identity.api import IDENTITY
from peewee import fn

from learnplat.plugin import (
    NotFound,
    PageQuery,
    Principal,
    ValidationFailed,
    current_tenant,
    db,
    paginate,
    utcnow,
)

from . import templates
from .events import BroadcastSent
from .mail import DIGEST_TASK, SEND_TASK, Mailer
from .models import Broadcast, Email, Notification, Preference, info
from .realtime import Publisher, message_of
from .schemas import (
    BroadcastAudience,
    BroadcastOut,
    BroadcastStatus,
    NotificationOut,
    NotificationPage,
    PreferencesOut,
)
from .settings import Channel, NotificationsSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)
BATCH = 500  # users per insert and per page of a fan-out
FANOUT_TASK = "notifications.fan_out"
CHANNELS = ("in_app", "email", "digest", "off")


def _aware(value: dt.datetime) -> dt.datetime:
    """An aggregate read back without the column's conversion may be naive (UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _chunks(ids: list[int], size: int = BATCH) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


class NotificationsService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = runtime.settings_of(NotificationsSettings)
        self.publisher = Publisher(runtime)

    # -- creating --------------------------------------------------------------------------

    def channels(self, user_ids: list[int], kind: str) -> dict[int, str]:
        """Each user's channel for `kind`: their preference, else the tenant's default for
        the kind, else the tenant's / the settings' default channel."""
        tenant = current_tenant()
        default = tenant.setting(f"notifications.default_channels.{kind}") or (
            templates.KIND_CHANNELS.get(kind)) or tenant.setting(
            "notifications.default_channel") or self.settings.default_channel
        chosen = {user_id: default for user_id in user_ids}
        for chunk in _chunks(user_ids):
            for pref in Preference.select(Preference.user_id, Preference.channel).where(
                    Preference.kind == kind, Preference.user_id.in_(chunk)):
                chosen[pref.user_id] = pref.channel
        return chosen

    def notify(self, user_ids: Iterable[int], kind: str, title: str, body: str = "",
               data: dict[str, Any] | None = None, source: str | None = None) -> int:
        """Create the notifications (one query per BATCH users), queue their emails, and
        publish them to connected sockets after commit. Users whose channel for the kind is
        "off" get nothing; with `source`, users already notified for it are skipped."""
        if not 0 < len(kind) <= 40 or (source is not None and len(source) > 80):
            raise ValueError("kind is 1..40 characters and source at most 80")
        wanted = list(dict.fromkeys(int(u) for u in user_ids))
        created = 0
        for chunk in _chunks(wanted):
            created += self._notify_batch(chunk, kind, title[:200], body, data or {}, source)
        return created

    def _notify_batch(self, user_ids: list[int], kind: str, title: str, body: str,
                      data: dict[str, Any], source: str | None) -> int:
        channels = self.channels(user_ids, kind)
        targets = [u for u in user_ids if channels[u] != "off"]
        if source is not None and targets:
            done = {n.user_id for n in Notification.select(Notification.user_id).where(
                Notification.source == source, Notification.user_id.in_(targets))}
            targets = [u for u in targets if u not in done]
        if not targets:
            return 0
        now = utcnow()
        rows = [{"user_id": u, "kind": kind, "title": title, "body": body, "data": data,
                 "source": source, "created_at": now} for u in targets]
        if source is None:
            ids = [Notification.insert(row).execute() for row in rows]
            created = list(Notification.select().where(Notification.id.in_(ids)))
        else:
            # Conflicts (a concurrent delivery of the same source) are skipped, not errors.
            Notification.insert_many(rows).on_conflict_ignore().execute()
            created = list(Notification.select().where(Notification.source == source,
                                                       Notification.user_id.in_(targets)))
        self._queue_emails(created, channels)
        messages = [message_of(info(n)) for n in created]
        tenant_id = current_tenant().id
        db.on_commit(lambda: self.publisher.publish(tenant_id, messages))
        return len(created)

    def _queue_emails(self, created: list[Notification], channels: dict[int, str]) -> None:
        mails = [{"user_id": n.user_id, "notification_id": n.id,
                  "mode": "immediate" if channels[n.user_id] == "email" else "digest"}
                 for n in created if channels[n.user_id] in ("email", "digest")]
        if not mails:
            return
        Email.insert_many(mails).on_conflict_ignore().execute()
        if any(m["mode"] == "immediate" for m in mails):
            self.runtime.queue.enqueue_for_tenant(SEND_TASK)

    def notify_kind(self, user_ids: Iterable[int], kind: str, values: dict[str, Any],
                    data: dict[str, Any], source: str) -> int:
        """A notification of a templated `kind` (the tenant's text, or the default)."""
        title, body = templates.render(current_tenant(), kind, values)
        return self.notify(user_ids, kind, title, body, data, source)

    def announce_module(self, course_id: int, module_id: int, module_title: str,
                        module_kind: str, course_title: str, source: str) -> None:
        """Notify every active student of the course of a module (or quiz) now released, a
        page at a time (a retried delivery skips those already notified: `source` is unique
        per student)."""
        kind = "quiz_published" if module_kind == "quiz" else "module_published"
        values = {"course_title": course_title, "module_title": module_title,
                  "course_id": course_id}
        data = {"course_id": course_id, "module_id": module_id}
        after = 0
        while True:
            ids = self.runtime.service(ENROLLMENT).active_user_ids(course_id, after_id=after,
                                                                   limit=BATCH)
            if ids:
                self.notify_kind(ids, kind, values, data, source)
            if len(ids) < BATCH:
                return
            after = max(ids)

    # -- the notification centre -----------------------------------------------------------

    def _own(self, principal: Principal, notification_id: int) -> Notification:
        row = Notification.select().where(Notification.id == notification_id,
                                          Notification.user_id == principal.user_id).first()
        if row is None:
            raise NotFound("no such notification")
        return row

    def page(self, principal: Principal, page: PageQuery, unread: bool | None
             ) -> NotificationPage:
        query = Notification.select().where(Notification.user_id == principal.user_id)
        if unread is True:
            query = query.where(Notification.read_at.is_null())
        elif unread is False:
            query = query.where(Notification.read_at.is_null(False))
        return NotificationPage(**paginate(query, [Notification.id.desc()], page,
                                           lambda n: NotificationOut.of(info(n))))

    def get(self, principal: Principal, notification_id: int) -> NotificationOut:
        return NotificationOut.of(info(self._own(principal, notification_id)))

    def unread_count(self, user_id: int) -> int:
        return (Notification.select().where(Notification.user_id == user_id,
                                            Notification.read_at.is_null()).count())

    def mark_read(self, principal: Principal, notification_id: int, read: bool = True
                  ) -> NotificationOut:
        row = self._own(principal, notification_id)
        if read and row.read_at is None:
            row.read_at = utcnow()
        elif not read:
            row.read_at = None
        Notification.update(read_at=row.read_at).where(Notification.id == row.id).execute()
        return NotificationOut.of(info(row))

    def mark_all_read(self, principal: Principal) -> int:
        return (Notification.update(read_at=utcnow())
                .where(Notification.user_id == principal.user_id,
                       Notification.read_at.is_null()).execute())

    def delete(self, principal: Principal, notification_id: int) -> None:
        row = self._own(principal, notification_id)
        Email.delete().where(Email.notification_id == row.id, Email.status == "pending"
                             ).execute()
        Notification.delete().where(Notification.id == row.id).execute()

    # -- broadcasts (admins) ---------------------------------------------------------------

    def broadcast(self, principal: Principal, title: str, body: str, kind: str,
                  data: dict[str, Any], user_id: int | None = None,
                  course_id: int | None = None, role: str | None = None,
                  everyone: bool = False) -> tuple[str, NotificationOut | BroadcastOut]:
        """One user: created now ("notification", the notification). An audience: a
        Broadcast row and the fan-out task ("broadcast", its status)."""
        principal.require("notifications.broadcast", hide=False)
        if user_id is not None:
            if self.runtime.service(IDENTITY).user(user_id) is None:
                raise ValidationFailed.field("user_id", "no such user in this school",
                                             "unknown")
            bc = Broadcast.create(audience="user", target=str(user_id), kind=kind, title=title,
                                  body=body, data=data, created_by=principal.user_id,
                                  status="done", recipients=0, finished_at=utcnow())
            self.notify([user_id], kind, title, body, data, source=f"broadcast:{bc.id}")
            row = Notification.select().where(Notification.source == f"broadcast:{bc.id}"
                                              ).first()
            bc.recipients = 1 if row else 0
            bc.save()
            if row is None:  # the user turned this kind off: nothing to show, but accepted
                return "broadcast", self.broadcast_out(bc)
            return "notification", NotificationOut.of(info(row))
        if course_id is not None:
            if self.runtime.service(COURSES).get_course(course_id) is None:
                raise ValidationFailed.field("course_id", "no such course in this school",
                                             "unknown")
            audience, target = "course", str(course_id)
        elif role is not None:
            audience, target = "role", role
        else:
            assert everyone
            audience, target = "tenant", ""
        bc = Broadcast.create(audience=audience, target=target, kind=kind, title=title,
                              body=body, data=data, created_by=principal.user_id)
        self.runtime.queue.enqueue_for_tenant(FANOUT_TASK, bc.id)
        return "broadcast", self.broadcast_out(bc)

    @staticmethod
    def broadcast_out(bc: Broadcast) -> BroadcastOut:
        return BroadcastOut(id=bc.id, audience=cast(BroadcastAudience, bc.audience),
                            target=bc.target or None, kind=bc.kind, title=bc.title,
                            status=cast(BroadcastStatus, bc.status),
                            recipients=bc.recipients, created_at=bc.created_at,
                            finished_at=bc.finished_at)

    def get_broadcast(self, principal: Principal, broadcast_id: int) -> BroadcastOut:
        principal.require("notifications.broadcast", hide=False)
        bc = Broadcast.select().where(Broadcast.id == broadcast_id).first()
        if bc is None:
            raise NotFound("no such broadcast")
        return self.broadcast_out(bc)

    def audience_page(self, bc: Broadcast, after: int) -> list[int]:
        """Up to BATCH recipients of the broadcast with ids above `after`, ascending."""
        if bc.audience == "course":
            return self.runtime.service(ENROLLMENT).active_user_ids(
                int(bc.target), after_id=after, limit=BATCH)
        return self.runtime.service(IDENTITY).user_ids(
            role=bc.target if bc.audience == "role" else None, after_id=after, limit=BATCH)

    def fan_out(self, broadcast_id: int, after: int = 0) -> int:
        """Notify one page of a broadcast's audience (users above `after`) and queue the task
        again for the next page: each page is its own short transaction (SQLite's write lock
        is never held for a whole school), and a crash resumes at the failed page. A retried
        page skips users already notified (the source is unique per user)."""
        query = Broadcast.select().where(Broadcast.id == broadcast_id)
        if db.is_postgres():
            # A chain resumed by the recovery sweep and the original one (slow, not dead)
            # take turns: only one finishes the broadcast and records BroadcastSent.
            query = query.for_update()
        bc = query.first()
        if bc is None or bc.status == "done":
            return 0
        if bc.status == "queued":
            bc.status = "sending"
            bc.save()
        ids = self.audience_page(bc, after)
        created = self.notify(ids, bc.kind, bc.title, bc.body, bc.data,
                              source=f"broadcast:{bc.id}") if ids else 0
        if len(ids) == BATCH:
            self.runtime.queue.enqueue_for_tenant(FANOUT_TASK, bc.id, max(ids))
            return created
        bc.recipients = (Notification.select()
                         .where(Notification.source == f"broadcast:{bc.id}").count())
        bc.status, bc.finished_at = "done", utcnow()
        bc.save()
        self.runtime.events.record(BroadcastSent(
            broadcast_id=bc.id, audience=bc.audience, target=bc.target,
            recipients=bc.recipients, actor_id=bc.created_by))
        return created

    # -- recovery (the sweep: every minute and at each worker start) ------------------------

    def recover(self) -> dict[str, int]:
        """Resume, in the current tenant, what a killed worker left: emails it was sending
        (back to pending), a sender that stopped while immediate emails wait, and broadcasts
        whose fan-out made no progress for recovery_seconds (resumed after the last user
        notified; users already notified are skipped anyway)."""
        mailer = Mailer(self.runtime)
        reclaimed = mailer.reclaim()
        now = utcnow()
        stale = now - dt.timedelta(seconds=self.settings.recovery_seconds)
        out = {"emails": sum(reclaimed.values()), "senders": 0, "broadcasts": 0}
        oldest = (Email.select(fn.MIN(Email.created_at))
                  .where(Email.status == "pending", Email.mode == "immediate").scalar())
        if oldest is not None and (reclaimed["immediate"] or _aware(oldest) < stale):
            last = (Email.select(fn.MAX(Email.sent_at))
                    .where(Email.status.in_(("sent", "sending")), Email.mode == "immediate")
                    .scalar())
            if reclaimed["immediate"] or last is None or _aware(last) < stale:
                self.runtime.queue.enqueue_for_tenant(SEND_TASK)
                out["senders"] += 1
        if reclaimed["digest"]:
            self.runtime.queue.enqueue_for_tenant(DIGEST_TASK)
            out["senders"] += 1
        for bc in Broadcast.select().where(Broadcast.status.in_(("queued", "sending")),
                                           Broadcast.created_at < stale):
            source = f"broadcast:{bc.id}"
            row = (Notification.select(fn.MAX(Notification.created_at).alias("at"),
                                       fn.MAX(Notification.user_id).alias("after"))
                   .where(Notification.source == source).dicts().first()) or {}
            if row.get("at") is not None and _aware(row["at"]) >= stale:
                continue  # making progress
            self.runtime.queue.enqueue_for_tenant(FANOUT_TASK, bc.id, int(row.get("after") or 0))
            out["broadcasts"] += 1
        if out["senders"] or out["broadcasts"]:
            log.warning("notifications: resumed %s", out)
        return out

    # -- preferences -----------------------------------------------------------------------

    def preferences(self, principal: Principal) -> PreferencesOut:
        chosen = {p.kind: p.channel for p in Preference.select().where(
            Preference.user_id == principal.user_id)}
        tenant = current_tenant()
        out: dict[str, Channel] = {}
        for kind in templates.KINDS:
            default = (tenant.setting(f"notifications.default_channels.{kind}")
                       or tenant.setting("notifications.default_channel")
                       or self.settings.default_channel)
            out[kind] = cast(Channel, chosen.get(kind, default))
        return PreferencesOut(channels=out)

    def set_preferences(self, principal: Principal, channels: dict[str, str]
                        ) -> PreferencesOut:
        unknown = sorted(set(channels) - set(templates.KINDS))
        if unknown:
            raise ValidationFailed([{"field": f"channels.{k}", "message": "unknown kind",
                                     "type": "unknown"} for k in unknown])
        for kind, channel in channels.items():
            Preference.insert(user_id=principal.user_id, kind=kind, channel=channel
                              ).on_conflict(
                conflict_target=[Preference.tenant, Preference.user_id, Preference.kind],
                update={Preference.channel: channel}).execute()
        return self.preferences(principal)

