"""Deliveries to real receivers on loopback, each request verified by the Standard Webhooks
reference library: the format and public fields, wildcard filters, secret rotation, retries
with the same webhook-id, 410 disabling the endpoint (admins told), the delivery log,
redelivery (API and CLI), redirects not followed, and schools kept apart."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from receivers import Receiver, Reply
from webhookhelpers import Hooks, WbGraded, WbNoted, WbPlumbing, record

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import make_tenant


def subscribe(hooks: Hooks, rx: Receiver, event_types: list[str] | None = None) -> int:
    created = hooks.create(rx.url, event_types)
    rx.secrets.append(created["secret"])
    return int(created["id"])


def test_an_event_is_delivered_signed_with_its_public_fields_only(hooks: Hooks,
                                                                   receiver: Receiver):
    eid = subscribe(hooks, receiver, ["wbtest.graded.v1"])
    [event_id] = record(hooks.runtime, hooks.tenant, WbGraded(
        course_id=42, user_id=1001, score=0.85, storage_key="grades/42/1001.json"))
    [got] = receiver.wait_for(1)
    assert got.verified, got.error
    assert got.headers["content-type"] == "application/json"
    assert got.webhook_id == f"msg_{event_id}"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    body = got.json
    assert body["type"] == "wbtest.graded.v1"
    assert body["data"] == {"course_id": 42, "user_id": 1001, "score": 0.85}
    assert b"storage_key" not in got.body and b"grades/42" not in got.body
    assert dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).tzinfo
    assert got.body == json.dumps(body, separators=(",", ":")).encode()  # compact

    [delivery] = hooks.deliveries(eid)
    assert delivery["status"] == "delivered" and delivery["webhook_id"] == got.webhook_id
    assert delivery["event_id"] == event_id and delivery["attempts"] == 1
    detail = hooks.api.get(f"/webhooks/deliveries/{delivery['id']}").json
    assert detail["payload"] == body
    [attempt] = detail["attempt_log"]
    assert attempt["status"] == 200 and attempt["answer"] == "ok" and attempt["latency_ms"] >= 0


def test_filters_choose_the_events_and_unpublished_ones_never_leave(hooks: Hooks):
    with Receiver() as every, Receiver() as graded_only, Receiver() as noted_only:
        subscribe(hooks, every, ["*"])
        subscribe(hooks, graded_only, ["wbtest.graded.*"])
        subscribe(hooks, noted_only, ["wbtest.noted.v1"])
        record(hooks.runtime, hooks.tenant, WbGraded(course_id=1, user_id=2, score=1),
               WbNoted(course_id=1), WbPlumbing(course_id=1))
        assert sorted(r.json["type"] for r in every.wait_for(2)) == [
            "wbtest.graded.v1", "wbtest.noted.v1"]
        assert [r.json["type"] for r in graded_only.wait_for(1)] == ["wbtest.graded.v1"]
        assert [r.json["type"] for r in noted_only.wait_for(1)] == ["wbtest.noted.v1"]
        assert all(r.verified for rx in (every, graded_only, noted_only) for r in rx.received)
        assert len(every.received) == 2 and len(graded_only.received) == 1


def test_rotation_signs_with_both_secrets_during_the_overlap_then_the_new_one(
        hooks: Hooks, receiver: Receiver):
    eid = subscribe(hooks, receiver)
    old = receiver.secrets[0]
    r = hooks.api.post(f"/webhooks/endpoints/{eid}/rotate-secret", json={"overlap_hours": 1})
    assert r.status_code == 200, r.text
    new = r.json["secret"]
    assert new != old and r.json["previous_expires_at"]
    receiver.secrets.append(new)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=1))
    [during] = receiver.wait_for(1)
    assert len(during.signatures) == 2
    assert sorted(during.verified_by) == sorted([old, new])  # each verifies on its own

    # The overlap over (as an hour later): the new secret alone signs.
    from learnplat_webhooks.models import EndpointSecret

    with (db.connection(), tenant_context(hooks.tenant), db.transaction()):
        EndpointSecret.update(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                              ).where(EndpointSecret.expires_at.is_null(False)).execute()
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=3))
    expired = receiver.wait_for(2)[1]
    assert len(expired.signatures) == 1 and expired.verified_by == [new]

    # Overlap 0: the previous secrets stop now.
    newest = hooks.api.post(f"/webhooks/endpoints/{eid}/rotate-secret",
                            json={"overlap_hours": 0}).json["secret"]
    receiver.secrets.append(newest)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=2))
    after = receiver.wait_for(3)[2]
    assert len(after.signatures) == 1 and after.verified_by == [newest]
    bad = hooks.api.post(f"/webhooks/endpoints/{eid}/rotate-secret",
                         json={"overlap_hours": 169})
    assert bad.status_code == 422


def test_5xx_and_no_answer_are_retried_with_the_same_webhook_id(hooks: Hooks,
                                                                receiver: Receiver):
    eid = subscribe(hooks, receiver)
    receiver.script(503, Reply(close=True), 200)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=7))
    receiver.wait_for(1)
    [d] = hooks.deliveries(eid)
    assert d["status"] == "pending" and d["last_status"] == 503 and d["next_attempt_at"]
    for _ in range(2):
        hooks.later(3600)  # past the next wait of the schedule
        hooks.deliver(eid)
    got = receiver.wait_for(3)
    assert len({r.webhook_id for r in got}) == 1 and all(r.verified for r in got)
    assert len({r.headers["webhook-timestamp"] for r in got}) >= 1
    [d] = hooks.deliveries(eid)
    assert d["status"] == "delivered" and d["attempts"] == 3
    log = hooks.api.get(f"/webhooks/deliveries/{d['id']}").json["attempt_log"]
    assert [a["status"] for a in log] == [200, None, 503]  # newest first
    assert log[1]["error"]


def test_an_endpoint_down_for_a_while_gets_everything_once_it_is_back(hooks: Hooks):
    """Nothing listens at the endpoint's address (refused) for two attempts, then a receiver
    comes back there: the retries deliver both events, each with its own unchanged
    webhook-id, verified; the log keeps the refused attempts."""
    gone = Receiver()
    port = gone.port
    gone.server.server_close()  # the address, with nothing listening
    rx = Receiver(port=port)
    rx.server.server_close()  # made for its URL; it listens only once it is back
    eid = subscribe(hooks, rx)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=7), WbNoted(course_id=8))
    hooks.later(3600)
    hooks.deliver(eid)  # still down
    pending = hooks.deliveries(eid)
    assert {d["status"] for d in pending} == {"pending"} and len(pending) == 2
    with Receiver(*rx.secrets, port=port) as back:
        hooks.later(7200)
        hooks.deliver(eid)
        got = back.wait_for(2)
    assert all(r.verified for r in got) and len({r.webhook_id for r in got}) == 2
    done = hooks.deliveries(eid)
    assert {d["status"] for d in done} == {"delivered"}
    first = min(done, key=lambda d: d["id"])
    log = hooks.api.get(f"/webhooks/deliveries/{first['id']}").json["attempt_log"]
    assert log[0]["status"] == 200 and len(log) >= 2  # newest first
    assert all(a["status"] is None and "refused" in (a["error"] or "") for a in log[1:])


def test_410_disables_the_endpoint_and_tells_the_admins(hooks: Hooks, receiver: Receiver,
                                                        lp_runtime: Any):
    from learnplat_notifications.models import Email, Notification

    eid = subscribe(hooks, receiver)
    receiver.script(Reply(410, b"gone"))
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=1))
    receiver.wait_for(1)
    ep = hooks.api.get(f"/webhooks/endpoints/{eid}").json
    assert ep["enabled"] is False and ep["disabled_reason"] and ep["disabled_at"]
    with (db.connection(), tenant_context(hooks.tenant), db.transaction(write=False)):
        told = list(Notification.select().where(Notification.kind == "webhook_disabled"))
        emails = list(Email.select().where(Email.notification_id.in_([n.id for n in told])))
    assert [n.user_id for n in told] == [hooks.admin.id]
    assert told[0].data["endpoint_id"] == eid and receiver.url in told[0].body
    assert len(emails) == 1  # the kind's default channel is e-mail
    # Disabled: a new event queues nothing for it.
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=2))
    assert len(hooks.deliveries(eid)) == 1 and len(receiver.received) == 1
    # Enabled again by the admin: a redelivery goes out.
    assert hooks.api.patch(f"/webhooks/endpoints/{eid}", json={"enabled": True}).json["enabled"]
    d = hooks.deliveries(eid)[0]
    r = hooks.api.post(f"/webhooks/deliveries/{d['id']}/redeliver")
    assert r.status_code == 202 and r.json["ids"] == [d["id"]]
    again = receiver.wait_for(2)[1]
    assert again.webhook_id == receiver.received[0].webhook_id and again.verified


def test_redeliver_a_time_range_through_the_api_and_the_cli(hooks: Hooks, receiver: Receiver,
                                                           lp_cli: Any):
    eid = subscribe(hooks, receiver)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=1), WbNoted(course_id=2))
    first = receiver.wait_for(2)
    ids = sorted(d["id"] for d in hooks.deliveries(eid))
    assert [d["status"] for d in hooks.deliveries(eid, status="delivered")] == ["delivered"] * 2

    # Failed ones only by default: none.
    r = hooks.api.post(f"/webhooks/endpoints/{eid}/redeliver",
                       json={"since": start.isoformat()})
    assert r.status_code == 202 and r.json == {"redelivered": 0, "ids": []}
    r = hooks.api.post(f"/webhooks/endpoints/{eid}/redeliver",
                       json={"since": start.isoformat(), "status": "delivered"})
    assert r.json["ids"] == ids
    second = receiver.wait_for(4)[2:]
    assert sorted(x.webhook_id for x in second) == sorted(x.webhook_id for x in first)

    out = lp_cli("webhooks", "redeliver", "--tenant", hooks.tenant.slug, "--endpoint",
                 str(eid), "--since", start.isoformat(), "--status", "any", "--json")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ids"] == ids
    out = lp_cli("webhooks", "redeliver", "--tenant", hooks.tenant.slug, str(ids[0]))
    assert out.exit_code == 0 and "1 deliveries" in out.stdout
    assert len(receiver.wait_for(7)) == 7
    listed = lp_cli("webhooks", "deliveries", "list", "--tenant", hooks.tenant.slug,
                    "--endpoint", str(eid), "--json")
    assert sorted(d["id"] for d in json.loads(listed.stdout)) == ids
    shown = lp_cli("webhooks", "deliveries", "show", "--tenant", hooks.tenant.slug,
                   str(ids[0]), "--json")
    assert len(json.loads(shown.stdout)["attempt_log"]) == 4


def test_a_redirect_is_not_followed_but_retried(hooks: Hooks, receiver: Receiver):
    eid = subscribe(hooks, receiver)
    receiver.script(Reply(302, headers={"Location": "http://10.0.0.7/steal"}))
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=1))
    receiver.wait_for(1)
    [d] = hooks.deliveries(eid)
    assert d["status"] == "pending" and d["last_status"] == 302
    assert len(receiver.received) == 1


def test_the_delivery_log_filters_and_pages(hooks: Hooks, receiver: Receiver):
    eid = subscribe(hooks, receiver)
    receiver.script(500)
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=1))
    record(hooks.runtime, hooks.tenant, WbGraded(course_id=1, user_id=2, score=3))
    record(hooks.runtime, hooks.tenant, WbNoted(course_id=3))
    receiver.wait_for(3)
    every = hooks.deliveries(eid)
    assert len(every) == 3 and every[0]["id"] > every[1]["id"] > every[2]["id"]
    assert [d["event_type"] for d in hooks.deliveries(eid, event_type="wbtest.graded.v1")] == [
        "wbtest.graded.v1"]
    assert len(hooks.deliveries(eid, status="pending")) == 1
    page = hooks.api.get(f"/webhooks/endpoints/{eid}/deliveries", params={"limit": 2}).json
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = hooks.api.get(f"/webhooks/endpoints/{eid}/deliveries",
                         params={"limit": 2, "cursor": page["next_cursor"]}).json
    assert [d["id"] for d in rest["items"]] == [every[2]["id"]] and rest["next_cursor"] is None
    future = hooks.deliveries(eid, since="2999-01-01T00:00:00Z")
    assert future == []
    ping = hooks.api.post(f"/webhooks/endpoints/{eid}/test")
    assert ping.status_code == 202 and ping.json["event_type"] == "webhook.test"
    got = receiver.wait_for(4)[3]
    assert got.json["type"] == "webhook.test" and got.verified


def test_another_schools_events_and_admins_see_nothing_of_this_school(
        hooks: Hooks, receiver: Receiver, lp_runtime: Any, lp_client: Any):
    eid = subscribe(hooks, receiver)
    other_tenant = make_tenant(lp_runtime)
    other = Hooks(lp_runtime, lp_client, other_tenant)
    with Receiver() as theirs:
        other_eid = subscribe(other, theirs)
        record(lp_runtime, other_tenant, WbNoted(course_id=99))
        theirs.wait_for(1)
        record(lp_runtime, hooks.tenant, WbNoted(course_id=1))
        receiver.wait_for(1)
        assert [r.json["data"]["course_id"] for r in receiver.received] == [1]
        assert [r.json["data"]["course_id"] for r in theirs.received] == [99]
    mine = hooks.deliveries(eid)[0]["id"]
    theirs_id = other.deliveries(other_eid)[0]["id"]
    for path in (f"/webhooks/deliveries/{mine}", ):
        assert other.api.get(path).status_code == 404
    assert other.api.post(f"/webhooks/deliveries/{mine}/redeliver").status_code == 404
    assert hooks.api.get(f"/webhooks/deliveries/{theirs_id}").status_code == 404
    assert other.api.get(f"/webhooks/endpoints/{eid}/deliveries").status_code == 404
