"""Platform registrations (learnplat as tool): the LMSs allowed to launch the school's
courses. No Falcon here: the resources and the CLI call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee

from learnplat.plugin import Conflict, NotFound, UnsafeURL, ValidationFailed, db, utcnow

from ..models import GradeTarget, PlatformAccount, PlatformRegistration
from .models import LtiToolDeepLink, LtiToolLogin

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

URL_FIELDS = ("auth_login_url", "token_url", "jwks_url", "landing_url")
FIELDS = ("name", "issuer", "client_id", "deployment_ids", *URL_FIELDS, "enabled")


class PlatformRegistrations:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    def _check_urls(self, data: dict[str, Any]) -> None:
        """Each URL as the outbound policy reaches it (422 ``unsafe_url`` naming the field):
        learnplat fetches the JWKS and token URLs itself, and sends browsers to the others."""
        for name in URL_FIELDS:
            value = data.get(name)
            if value and name in ("auth_login_url", "landing_url"):
                # Only a browser goes there: checked as a URL, its address not looked up.
                data[name] = self.plugin.urls.browser_url(name, value)
            elif value:
                try:
                    data[name] = str(self.plugin.runtime.outbound.check_url(value))
                except UnsafeURL as exc:
                    raise ValidationFailed.field(name, str(exc), "unsafe_url") from None
                if len(data[name]) > 2000:
                    raise ValidationFailed.field(
                        name, "longer than 2000 characters once normalised", "unsafe_url")

    def _unique(self, issuer: str, client_id: str, but: int | None = None) -> None:
        q = PlatformRegistration.select().where((PlatformRegistration.issuer == issuer)
                                                & (PlatformRegistration.client_id == client_id))
        if but is not None:
            q = q.where(PlatformRegistration.id != but)
        if q.exists():
            raise Conflict(f"a platform with issuer {issuer!r} and client_id {client_id!r} is "
                           "registered already", code="lti_platform_exists")

    def _save(self, row: PlatformRegistration) -> PlatformRegistration:
        try:
            with db.database.atomic():  # savepoint: a racing twin is a 409, not a 500
                row.save()
        except peewee.IntegrityError:
            raise Conflict(f"a platform with issuer {row.issuer!r} and client_id "
                           f"{row.client_id!r} is registered already",
                           code="lti_platform_exists") from None
        return row

    def create(self, data: dict[str, Any], created_by: int | None = None
               ) -> PlatformRegistration:
        data = dict(data)
        self._check_urls(data)
        self._unique(data["issuer"], data["client_id"])
        now = utcnow()
        row = PlatformRegistration(**data, created_by=created_by, created_at=now,
                                   updated_at=now)
        return self._save(row)

    def get(self, platform_id: int, lock: bool = False) -> PlatformRegistration:
        q = PlatformRegistration.select().where(PlatformRegistration.id == platform_id)
        if lock and db.is_postgres():
            q = q.for_update()
        row = q.first()
        if row is None:
            raise NotFound("no such LTI platform", code="lti_no_platform")
        return row

    def list(self, enabled: bool | None = None) -> peewee.ModelSelect[PlatformRegistration]:
        q = PlatformRegistration.select()
        if enabled is not None:
            q = q.where(PlatformRegistration.enabled == enabled)
        return q

    def update(self, platform_id: int, changes: dict[str, Any]) -> PlatformRegistration:
        row = self.get(platform_id, lock=True)
        changes = {k: v for k, v in changes.items() if k in FIELDS}
        self._check_urls(changes)
        issuer = changes.get("issuer", row.issuer)
        client_id = changes.get("client_id", row.client_id)
        self._unique(issuer, client_id, but=row.id)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        return self._save(row)

    def delete(self, platform_id: int) -> None:
        """The registration, its linked accounts' links (not the accounts), grade targets
        and logins in flight."""
        row = self.get(platform_id, lock=True)
        GradeTarget.delete().where(GradeTarget.platform == row.id).execute()
        PlatformAccount.delete().where(PlatformAccount.platform == row.id).execute()
        LtiToolLogin.delete().where(LtiToolLogin.platform_id == row.id).execute()
        LtiToolDeepLink.delete().where(LtiToolDeepLink.platform_id == row.id).execute()
        row.delete_instance()
