"""What the webhooks tests share (conftest.py holds only fixtures): test events (one with an
internal field, one not published), recording them through the real outbox, and `Hooks`, a
school's admin driving /webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from learnplat_identity.testing import UserFactory

from learnplat import db
from learnplat.contracts import Event
from learnplat.tenancy import TenantInfo, tenant_context


class WbGraded(Event):
    """A test event: a learner's work was graded."""

    name: ClassVar[str] = "wbtest.graded.v1"
    internal_fields: ClassVar[frozenset[str]] = frozenset({"storage_key"})
    course_id: int
    user_id: int
    score: float
    storage_key: str = ""  # stays inside learnplat


class WbNoted(Event):
    """A test event: a note was added to a course."""

    name: ClassVar[str] = "wbtest.noted.v1"
    course_id: int


class WbPlumbing(Event):
    """A test event that never leaves learnplat."""

    name: ClassVar[str] = "wbtest.plumbing.v1"
    published: ClassVar[bool] = False
    course_id: int


TEST_EVENTS = (WbGraded, WbNoted, WbPlumbing)



def record(runtime: Any, tenant: TenantInfo, *events: Event) -> list[int]:
    """Record events in `tenant` and commit: the outbox delivers them (immediate queue), the
    fan-out queues the deliveries and the engine sends them, all before this returns."""
    with db.connection(), tenant_context(tenant), db.transaction():
        return [runtime.events.record(e) for e in events]


class Hooks:
    """A school's admin driving /webhooks, plus direct access to the engine."""

    def __init__(self, runtime: Any, client: Any, tenant: TenantInfo):
        self.runtime = runtime
        self.tenant = tenant
        self.users = UserFactory(runtime, tenant)
        self.admin = self.users.make("admin")
        self.api = client.as_(self.admin.token, tenant=tenant)

    def create(self, url: str, event_types: list[str] | None = None, **fields: Any
               ) -> dict[str, Any]:
        r = self.api.post("/webhooks/endpoints", json={
            "url": url, "event_types": event_types or ["wbtest.*"], **fields})
        assert r.status_code == 201, r.text
        return dict(r.json)

    def deliveries(self, endpoint_id: int, **params: Any) -> list[dict[str, Any]]:
        r = self.api.get(f"/webhooks/endpoints/{endpoint_id}/deliveries", params=params)
        assert r.status_code == 200, r.text
        return list(r.json["items"])

    def destination_id(self, endpoint_id: int) -> int:
        with db.connection(), tenant_context(self.tenant):
            info = self.runtime.outbound.destination("webhooks", str(endpoint_id))
        return int(info.id)

    def later(self, seconds: float) -> None:
        """Move the engine's clock on (a retry comes due) and give the endpoint its turn."""
        outbound = self.runtime.outbound
        now = outbound.now()
        outbound.now = lambda: now + dt.timedelta(seconds=seconds)

    def deliver(self, endpoint_id: int) -> int:
        return int(self.runtime.outbound.deliver(self.destination_id(endpoint_id)))
