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
from typing import TYPE_CHECKING

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

    def _message(self, cfg: SmtpConfig, to: str, subject: str, text: str,
                 email_id: int | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = cfg.sender, to, subject
        if email_id is not None:
            # Stable per outbox row: if a sender dies between the server's acceptance and
            # its "sent" mark, the row is sent again under the same Message-ID, which mail
            # clients collapse into one.
            domain = cfg.sender.rsplit("@", 1)[-1] or "localhost"
            msg["Message-ID"] = f"<lp-{current_tenant().id}-{email_id}@{domain}>"
        msg.set_content(text)
        return msg

    def budget(self) -> int:
        """How many more emails the tenant may send in the current minute (emails being sent
        count: their sent_at is when a sender took them)."""
        window = utcnow() - dt.timedelta(seconds=60)
        sent = Email.select().where(Email.status.in_(("sent", "sending")),
                                    Email.sent_at > window).count()
        return per_minute(current_tenant(), self.settings) - sent

    def _serialise(self) -> None:
        """Claims of one tenant one at a time, so that two senders never both spend the
        minute's budget. PostgreSQL: a transaction-scoped advisory lock (held for a claim's
        short transaction only). SQLite: the transaction's BEGIN IMMEDIATE already does."""
        if db.is_postgres():
            key = (0x6E6F7469 << 20) ^ current_tenant().id  # "noti" + tenant id
            db.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))

    def _claim(self, mode: str, user_id: int | None = None, exclude: list[int] | None = None
               ) -> list[Email] | None:
        """Take the next pending email (immediate), or a user's waiting digest rows, for
        sending: marked `sending` (sent_at = now) in their own committed transaction, so
        that a sender killed mid-way leaves at most the email it was sending in doubt, never
        the ones it had already sent (they are `sent`) or not reached yet (`pending`).
        None when the budget is spent; [] when nothing is waiting."""
        with db.transaction():
            self._serialise()
            if self.budget() <= 0:
                return None
            query = Email.select().where(Email.status == "pending", Email.mode == mode)
            if exclude:  # failed in this run: left to a later one
                query = query.where(Email.id.not_in(exclude))
            if user_id is not None:
                query = query.where(Email.user_id == user_id)
            else:
                query = query.limit(1)
            rows = list(query.order_by(Email.id))
            if rows:
                Email.update(status="sending", sent_at=utcnow()).where(
                    Email.id.in_([r.id for r in rows])).execute()
            return rows

    def _mark(self, ids: list[int], status: str, error: str = "") -> None:
        with db.transaction():
            Email.update(status=status, attempts=Email.attempts + 1, error=error).where(
                Email.id.in_(ids), Email.status == "sending").execute()

    def reclaim(self) -> dict[str, int]:
        """Emails left `sending` for over recovery_seconds by a sender that died (a killed
        worker) go back to `pending`, to be sent again (under their Message-ID); after
        MAX_ATTEMPTS they fail. Returns how many per mode."""
        stale = utcnow() - dt.timedelta(seconds=self.settings.recovery_seconds)
        out = {"immediate": 0, "digest": 0}
        with db.transaction():
            rows = list(Email.select(Email.id, Email.mode, Email.attempts).where(
                Email.status == "sending", Email.sent_at < stale))
            for row in rows:
                gave_up = row.attempts + 1 >= MAX_ATTEMPTS
                Email.update(status="failed" if gave_up else "pending", sent_at=None,
                             attempts=Email.attempts + 1,
                             error="the sender died while sending; queued again").where(
                    Email.id == row.id, Email.status == "sending").execute()
                out[row.mode] = out.get(row.mode, 0) + 1
        if rows:
            log.warning("notifications: %d emails left half-sent by a dead sender were queued "
                        "again", len(rows))
        return out

    def send_pending(self) -> dict[str, int]:
        """Send the tenant's immediate emails within the rate limit, one committed claim and
        one committed "sent" mark per email (so a sender killed mid-batch never sends an
        email twice); re-queue the task when some must wait."""
        tenant = current_tenant()
        cfg = SmtpConfig.of(tenant, self.settings)
        pending = Email.select().where(Email.status == "pending", Email.mode == "immediate")
        if not cfg.host:  # no mail server: in-app only, never a flood when one is added later
            with db.transaction():
                skipped = (Email.update(status="skipped", error="no SMTP server configured")
                           .where(Email.status == "pending", Email.mode == "immediate")
                           .execute())
            return {"sent": 0, "skipped": skipped, "left": 0}
        identity = self.runtime.service(IDENTITY)
        sent = 0
        failed: list[int] = []
        smtp: smtplib.SMTP | None = None
        try:
            while True:
                claimed = self._claim("immediate", exclude=failed)
                if not claimed:
                    break
                row = claimed[0]
                with db.transaction(write=False):
                    note = Notification.select().where(
                        Notification.id == row.notification_id).first()
                    user = identity.users({row.user_id}).get(row.user_id)
                if note is None or user is None or not user.active:
                    self._mark([row.id], "skipped", "notification or user gone")
                    continue
                text = f"{note.body}\n\n-- \n{tenant.name}"
                try:
                    smtp = smtp or cfg.connect()
                    smtp.send_message(self._message(cfg, user.email, note.title, text, row.id))
                except (smtplib.SMTPException, OSError) as exc:
                    self._failed(row, exc)
                    failed.append(row.id)
                    if smtp is None:
                        break  # the server cannot be reached: the next run tries again
                    smtp = None
                    continue
                with db.transaction():
                    Email.update(status="sent", sent_at=utcnow(),
                                 attempts=Email.attempts + 1).where(Email.id == row.id).execute()
                sent += 1
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        with db.transaction(write=False):
            left = pending.count()
        if left:
            self._later(left)
        return {"sent": sent, "left": left}

    def _failed(self, row: Email, exc: Exception) -> None:
        attempts = row.attempts + 1
        with db.transaction():
            Email.update(status="failed" if attempts >= MAX_ATTEMPTS else "pending",
                         attempts=attempts, error=str(exc)[:500], sent_at=None).where(
                Email.id == row.id).execute()
        log.warning("notifications: email %s to user %s failed (%s)", row.id, row.user_id, exc)

    def _later(self, left: int) -> None:
        """Run again when the current minute's window has room (a delayed task)."""
        self.runtime.queue.enqueue_for_tenant(SEND_TASK, delay=61)
        log.info("notifications: %s emails wait for the rate limit", left)

    def send_digests(self) -> dict[str, int]:
        """One email per user with every notification waiting for their digest; counts
        against the rate limit like any email (users beyond the budget wait for a later run,
        queued for when the window has room). Each user's rows are claimed and marked in
        their own transactions, as immediate emails are."""
        tenant = current_tenant()
        cfg = SmtpConfig.of(tenant, self.settings)
        waiting = Email.select().where(Email.status == "pending", Email.mode == "digest")
        if not cfg.host:
            with db.transaction():
                skipped = (Email.update(status="skipped", error="no SMTP server configured")
                           .where(Email.status == "pending", Email.mode == "digest").execute())
            return {"sent": 0, "skipped": skipped}
        with db.transaction(write=False):
            user_ids = [r.user_id for r in waiting.select(Email.user_id).distinct()
                        .order_by(Email.user_id)]
        identity = self.runtime.service(IDENTITY)
        sent = 0
        smtp: smtplib.SMTP | None = None
        try:
            for user_id in user_ids:
                rows = self._claim("digest", user_id)
                if rows is None:
                    break  # the budget is spent: the rest waits for a later run
                if not rows:
                    continue  # another run took them
                ids = [r.id for r in rows]
                with db.transaction(write=False):
                    notes = list(Notification.select().where(
                        Notification.id.in_([r.notification_id for r in rows]))
                        .order_by(Notification.id))
                    user = identity.users({user_id}).get(user_id)
                if user is None or not user.active or not notes:
                    self._mark(ids, "skipped")
                    continue
                lines = [f"* {n.title}\n  {n.body}" for n in notes]
                text = "\n\n".join(lines) + f"\n\n-- \n{tenant.name}"
                subject = f"{tenant.name}: {len(notes)} new notification" + (
                    "s" if len(notes) > 1 else "")
                try:
                    smtp = smtp or cfg.connect()
                    smtp.send_message(self._message(cfg, user.email, subject, text, ids[0]))
                except (smtplib.SMTPException, OSError) as exc:
                    log.warning("notifications: digest to user %s failed (%s)", user_id, exc)
                    with db.transaction():  # back in the digest for the next run
                        Email.update(status="pending", sent_at=None).where(
                            Email.id.in_(ids)).execute()
                    smtp = None
                    continue
                # Every row of the digest counts as sent; the budget is per email, so count
                # one: the others keep their sent_at empty.
                with db.transaction():
                    Email.update(status="sent", sent_at=None).where(Email.id.in_(ids)).execute()
                    Email.update(sent_at=utcnow()).where(Email.id == ids[0]).execute()
                sent += 1
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        with db.transaction(write=False):
            left = waiting.count()
        if left:
            self.runtime.queue.enqueue_for_tenant(DIGEST_TASK, delay=61)
        return {"sent": sent}
