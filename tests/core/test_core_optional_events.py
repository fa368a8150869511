"""Events of optional plugins typed for their consumers: a handler of an event given by name
declares the model of the payload fields it reads (`EventHandler(..., payload=Model)`), and
the bus hands it ``event.data`` as that model, parsed from the stored payload (extra fields
ignored); a payload that does not parse is a failed delivery of that handler alone."""

from __future__ import annotations

import datetime as dt

import pytest
from corehelpers import build_runtime
from pydantic import BaseModel

from learnplat import db
from learnplat.contracts import Event
from learnplat.models import EventDelivery, OutboxEvent
from learnplat.registry import EventHandler, Registry
from learnplat.tenancy import tenant_context
from learnplat.testing import declare_event, make_tenant, use_runtime


class Graded(BaseModel):
    """The consumer's view of "t.graded.v1": only what it reads."""

    course_id: int
    user_id: int
    percent: float
    reviewed: bool = False


@pytest.fixture
def bus_runtime(tmp_path, core_database, _core_runtime):
    rt = build_runtime(tmp_path, core_database, do_migrate=False,
                       queue={"immediate": False}, redis={"url": ""},
                       events={"max_attempts": 2, "backoff_seconds": 10})
    with use_runtime(rt):
        yield rt


def _record(rt, tenant, name, payload):
    with db.connection(), tenant_context(tenant), db.transaction():
        return rt.events.record(declare_event(rt, name)(**payload))


def _deliveries(event_id):
    with db.connection():
        return {d.handler: d for d in EventDelivery.select().where(
            EventDelivery.event == event_id)}


def test_a_handler_gets_its_own_payload_model(bus_runtime):
    tenant = make_tenant(bus_runtime)
    typed, untyped = [], []
    bus_runtime.registry.handlers += [
        EventHandler("t.graded.v1", "typed", lambda rt, e: typed.append(e), plugin="tests",
                     optional=True, payload=Graded),
        EventHandler("t.graded.v1", "untyped", lambda rt, e: untyped.append(e),
                     plugin="tests", optional=True),
    ]
    payload = {"course_id": 3, "user_id": 7, "percent": 85, "attempt_id": 1, "late": True}
    event_id = _record(bus_runtime, tenant, "t.graded.v1", payload)
    bus_runtime.events.dispatch_pending()

    [message] = typed
    assert isinstance(message.data, Graded)
    assert message.data == Graded(course_id=3, user_id=7, percent=85.0)  # extras ignored
    assert message.payload == payload  # the stored payload, as recorded
    assert (message.id, message.name) == (event_id, "t.graded.v1")
    # A handler without `payload` is unchanged: the declared type's instance.
    [plain] = untyped
    assert not isinstance(plain.data, Graded) and isinstance(plain.data, Event)
    assert plain.data.model_dump() == payload


def test_a_payload_its_model_cannot_read_fails_that_delivery(bus_runtime):
    tenant = make_tenant(bus_runtime)
    typed, others = [], []
    bus_runtime.registry.handlers += [
        EventHandler("t.graded.v1", "typed", lambda rt, e: typed.append(e), plugin="tests",
                     optional=True, payload=Graded),
        EventHandler("t.graded.v1", "other", lambda rt, e: others.append(e.id),
                     plugin="tests", optional=True),
    ]
    event_id = _record(bus_runtime, tenant, "t.graded.v1",
                       {"course_id": 3, "user_id": "seven"})  # no percent, user_id no int
    bus_runtime.events.dispatch_pending()
    assert typed == [] and others == [event_id]  # the other handler is delivered
    delivery = _deliveries(event_id)["tests.typed"]
    assert delivery.status == "pending" and delivery.attempts == 1
    error = delivery.last_error
    assert error.startswith("learnplat.events.PayloadError: ")
    assert "t.graded.v1" in error and "Graded" in error and "tests.typed" in error
    assert "percent" in error and "user_id" in error

    with db.connection():  # retried like a raising handler, then failed
        OutboxEvent.update(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                           ).where(OutboxEvent.id == event_id).execute()
    bus_runtime.events.dispatch_pending()
    assert typed == [] and others == [event_id]
    assert _deliveries(event_id)["tests.typed"].status == "failed"
    with db.connection():
        assert OutboxEvent.get_by_id(event_id).status == "failed"


def test_payload_is_a_model_of_an_event_given_by_name():
    class Declared(Event):
        name = "t.declared.v1"
        course_id: int

    with pytest.raises(TypeError, match="given by name"):
        EventHandler(Declared, "h", lambda rt, e: None, payload=Graded)
    with pytest.raises(TypeError, match="given by name"):
        EventHandler("*", "h", lambda rt, e: None, payload=Graded)
    with pytest.raises(TypeError, match="not a pydantic model"):
        EventHandler("t.graded.v1", "h", lambda rt, e: None, payload=dict)
    assert EventHandler("t.graded.v1", "h", lambda rt, e: None, payload=Graded).payload is Graded


def test_a_payload_model_reading_what_the_loaded_publisher_lacks_is_a_warning():
    class Declared(Event):
        """A grading."""
        name = "t.graded.v1"
        course_id: int
        user_id: int

    registry = Registry()
    registry.add_event(Declared, "publisher")
    registry.add_handler(EventHandler("t.graded.v1", "h", lambda rt, e: None,
                                      plugin="consumer", optional=True, payload=Graded))
    assert registry.check_wiring() == [
        "plugin 'consumer' reads percent of 't.graded.v1' (Graded), which plugin 'publisher' "
        "does not declare in Declared"]
