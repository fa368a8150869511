"""Email: the outbox drained by tasks through the tenant's SMTP server, at most
``emails_per_minute`` per tenant, and daily digests (one email per user with everything they
chose to get by digest).

Rate limiting counts the tenant's emails sent in the last 60 seconds in the outbox itself, so
it holds across worker processes and machines without another store. A run sends at most what
the budget allows and re-queues itself for when the window has room: a broadcast to 10,000
students drains at the configured pace instead of flooding the server.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from learnplat_identity.api import IDENTITY

from learnplat.plugin import TenantInfo, current_tenant, db, utcnow

from .models import Email, Notification
from .settings import NotificationsSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)
SEND_TASK = "notifications.send_emails"
DIGEST_TASK = "notifications.send_digests"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str
    password: str
    sender: str
    starttls: bool
    ssl: bool
    timeout: float

    @classmethod
    def of(cls, tenant: TenantInfo, s: NotificationsSettings) -> SmtpConfig:
        """The tenant's SMTP settings (tenant setting notifications.smtp), key by key over
        the [notifications] section's."""
        t = tenant.setting("notifications.smtp", {}) or {}
        return cls(host=str(t.get("host", s.smtp_host)), port=int(t.get("port", s.smtp_port)),
                   username=str(t.get("username", s.smtp_username)),
                   password=str(t.get("password", s.smtp_password)),
                   sender=str(t.get("from", s.smtp_from)),
                   starttls=bool(t.get("starttls", s.smtp_starttls)),
                   ssl=bool(t.get("ssl", s.smtp_ssl)), timeout=s.smtp_timeout)

    def connect(self) -> smtplib.SMTP:
        klass = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        smtp = klass(self.host, self.port, timeout=self.timeout)
        if self.starttls and not self.ssl:
            smtp.starttls()
        if self.username:
            smtp.login(self.username, self.password)
        return smtp


def per_minute(tenant: TenantInfo, s: NotificationsSettings) -> int:
    value = tenant.setting("notifications.emails_per_minute", s.emails_per_minute)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return s.emails_per_minute


class Mailer:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = runtime.settings_of(NotificationsSettings)

    def _message(self, cfg: SmtpConfig, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = cfg.sender, to, subject
        msg.set_content(text)
        return msg

    def budget(self) -> int:
        """How many more emails the tenant may send in the current minute."""
        window = utcnow() - dt.timedelta(seconds=60)
        sent = Email.select().where(Email.status == "sent", Email.sent_at > window).count()
        return per_minute(current_tenant(), self.settings) - sent

    def _sender_lock(self) -> bool:
        """One sending run per tenant at a time, so that two runs never both spend the
        minute's budget. PostgreSQL: a transaction-scoped advisory lock (a run that does not
        get it leaves the work to the one that has it, which re-queues itself if needed).
        SQLite: the run's BEGIN IMMEDIATE already serialises writers."""
        if not db.is_postgres():
            return True
        key = (0x6E6F7469 << 20) ^ current_tenant().id  # "noti" + tenant id
        cursor = db.database.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (key,))
        return bool(cursor.fetchone()[0])

    def _locked(self, query: Any) -> Any:
        # PostgreSQL: two concurrent runs take different rows. SQLite: the run holds the
        # database's write lock (BEGIN IMMEDIATE), which serialises runs anyway.
        return query.for_update("FOR UPDATE SKIP LOCKED") if db.is_postgres() else query

    def send_pending(self) -> dict[str, int]:
        """Send the tenant's immediate emails within the rate limit (in the task's
        transaction); re-queue the task when some must wait."""
        tenant = current_tenant()
        cfg = SmtpConfig.of(tenant, self.settings)
        pending = Email.select().where(Email.status == "pending", Email.mode == "immediate")
        if not cfg.host:  # no mail server: in-app only, never a flood when one is added later
            skipped = (Email.update(status="skipped", error="no SMTP server configured")
                       .where(Email.status == "pending", Email.mode == "immediate").execute())
            return {"sent": 0, "skipped": skipped, "left": 0}
        if not self._sender_lock():
            return {"sent": 0, "left": -1}  # another run is sending for this tenant
        budget = self.budget()
        if budget <= 0:
            self._later(pending.count())
            return {"sent": 0, "left": pending.count()}
        rows = list(self._locked(pending.order_by(Email.id).limit(budget)))
        notes = {n.id: n for n in Notification.select().where(
            Notification.id.in_([r.notification_id for r in rows]))}
        users = self.runtime.service(IDENTITY).users({r.user_id for r in rows})
        sent = 0
        smtp: smtplib.SMTP | None = None
        try:
            for row in rows:
                note, user = notes.get(row.notification_id), users.get(row.user_id)
                if note is None or user is None or not user.active:
                    row.status, row.error = "skipped", "notification or user gone"
                    row.save()
                    continue
                text = f"{note.body}\n\n-- \n{tenant.name}"
                try:
                    smtp = smtp or cfg.connect()
                    smtp.send_message(self._message(cfg, user.email, note.title, text))
                except (smtplib.SMTPException, OSError) as exc:
                    self._failed(row, exc)
                    smtp = None
                    continue
                row.status, row.sent_at, row.attempts = "sent", utcnow(), row.attempts + 1
                row.save()
                sent += 1
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        left = pending.count()
        if left:
            self._later(left)
        return {"sent": sent, "left": left}

    def _failed(self, row: Email, exc: Exception) -> None:
        row.attempts += 1
        row.error = str(exc)[:500]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
        row.save()
        log.warning("notifications: email %s to user %s failed (%s)", row.id, row.user_id, exc)

    def _later(self, left: int) -> None:
        """Run again when the current minute's window has room (a delayed task)."""
        self.runtime.queue.enqueue_for_tenant(SEND_TASK, delay=61)
        log.info("notifications: %s emails wait for the rate limit", left)

    def send_digests(self) -> dict[str, int]:
        """One email per user with every notification waiting for their digest; counts
        against the rate limit like any email (users beyond the budget wait for a later run,
        queued for when the window has room)."""
        tenant = current_tenant()
        cfg = SmtpConfig.of(tenant, self.settings)
        waiting = Email.select().where(Email.status == "pending", Email.mode == "digest")
        if not cfg.host:
            skipped = (Email.update(status="skipped", error="no SMTP server configured")
                       .where(Email.status == "pending", Email.mode == "digest").execute())
            return {"sent": 0, "skipped": skipped}
        if not self._sender_lock():
            return {"sent": 0}
        user_ids = [r.user_id for r in waiting.select(Email.user_id).distinct()
                    .order_by(Email.user_id).limit(max(0, self.budget()))]
        if not user_ids:
            return {"sent": 0}
        users = self.runtime.service(IDENTITY).users(user_ids)
        sent = 0
        smtp: smtplib.SMTP | None = None
        try:
            for user_id in user_ids:
                rows = list(self._locked(waiting.where(Email.user_id == user_id)
                                         .order_by(Email.id)))
                notes = list(Notification.select().where(
                    Notification.id.in_([r.notification_id for r in rows]))
                    .order_by(Notification.id))
                user = users.get(user_id)
                ids = [r.id for r in rows]
                if user is None or not user.active or not notes:
                    Email.update(status="skipped").where(Email.id.in_(ids)).execute()
                    continue
                lines = [f"* {n.title}\n  {n.body}" for n in notes]
                text = "\n\n".join(lines) + f"\n\n-- \n{tenant.name}"
                subject = f"{tenant.name}: {len(notes)} new notification" + (
                    "s" if len(notes) > 1 else "")
                try:
                    smtp = smtp or cfg.connect()
                    smtp.send_message(self._message(cfg, user.email, subject, text))
                except (smtplib.SMTPException, OSError) as exc:
                    log.warning("notifications: digest to user %s failed (%s)", user_id, exc)
                    smtp = None
                    continue
                # Every row of the digest counts as sent; the budget is per email, so count
                # one: the others keep their sent_at empty.
                Email.update(status="sent").where(Email.id.in_(ids)).execute()
                Email.update(sent_at=utcnow()).where(Email.id == ids[0]).execute()
                sent += 1
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        if waiting.count():
            self.runtime.queue.enqueue_for_tenant(DIGEST_TASK, delay=61)
        return {"sent": sent}
