"""The degradations the service fault tests rely on, in-process and on both backends: a Redis
that cannot be reached (a client to a port nobody listens on) and a key-value store that lost
its keys (a Redis restarted empty). The real outages are in test_faults_redis.py and
test_faults_postgres.py (PostgreSQL + Redis only)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import free_port


def _dead_redis() -> redis.Redis:
    """A client of a port nobody listens on: every call fails at once (connection refused)."""
    return redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                socket_connect_timeout=0.5, socket_timeout=0.5)


def _video_course(client: Any, users: Any) -> tuple[int, int, Any]:
    teacher, admin, student = users.make("instructor"), users.make("admin"), users.make()
    t = client.as_(teacher.token)
    cid = t.post("/courses", json={"title": "Video"}).json["id"]
    r = t.post(f"/courses/{cid}/modules", json={"title": "V", "kind": "video"})
    assert r.status_code == 201, r.text
    mid = r.json["id"]
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert client.as_(admin.token).post(f"/courses/{cid}/approve").status_code == 200
    s = client.as_(student.token)
    assert s.post(f"/courses/{cid}/enroll").status_code == 201
    return cid, mid, (s, student)


def test_heartbeats_write_through_when_redis_is_unreachable(
        lp_client: Any, lp_users: Any, lp_runtime: Any, lp_tenant: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from learnplat_progress.heartbeats import HeartbeatStore
    from learnplat_progress.models import ModuleProgress
    from learnplat_progress.services import ProgressService

    cid, mid, (s, student) = _video_course(lp_client, lp_users)
    svc = lp_runtime.service("progress")
    dead = HeartbeatStore(_dead_redis(), lambda: svc.settings, "dead")
    monkeypatch.setattr(ProgressService, "store", property(lambda self: dead))

    r = s.post(f"/progress/{cid}", json={"module_id": mid, "position_seconds": 30,
                                          "duration_seconds": 600})
    assert r.status_code == 200, r.text
    assert r.json["position_seconds"] == 30
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        row = ModuleProgress.get((ModuleProgress.course_id == cid)
                                 & (ModuleProgress.user_id == student.id)
                                 & (ModuleProgress.module_id == mid))
    assert row.last_position == 30  # in the database, not waiting for a flush
    doc = s.get(f"/progress/{cid}")
    assert doc.status_code == 200, doc.text
    assert doc.json["modules"][0]["position_seconds"] == 30


def test_writes_that_need_redis_answer_503(lp_client: Any, lp_users: Any, lp_runtime: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A logout must record its revocation in the store: while the store is unreachable it
    answers a clean 503 (and the token keeps working), never a 500."""
    user = lp_users.make()
    kv = lp_runtime.service("identity").kv

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Error 111 connecting: Connection refused")

    monkeypatch.setattr(kv, "set", refuse)
    r = lp_client.as_(user.token).post("/auth/logout")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"]
    assert r.json["code"] == "service_unavailable"
    monkeypatch.undo()
    assert lp_client.as_(user.token).get("/auth/profile").status_code == 200


def test_revoked_token_stays_refused_when_the_store_loses_its_keys(
        lp_client: Any, lp_users: Any, lp_runtime: Any, lp_tenant: Any) -> None:
    """Redis restarted without persistence comes back empty: the logout's revocation keys
    are gone. The missing marker makes identity answer from the database and put the ended
    families back, so the logged-out token is still refused."""
    gone, kept = lp_users.make(), lp_users.make()
    assert lp_client.as_(gone.token).get("/auth/profile").status_code == 200
    assert lp_client.as_(gone.token).post("/auth/logout").status_code in (200, 204)
    assert lp_client.as_(gone.token).get("/auth/profile").status_code == 401

    kv = lp_runtime.service("identity").kv
    tid = lp_tenant.id
    families = [f"fam:{tid}:{fam}" for fam in _families(lp_runtime, lp_tenant, gone.id)]
    assert any(kv.get(k) is not None for k in families)
    # What a restart without persistence does to this tenant's keys.
    for key in [f"revok:{tid}", *families]:
        kv.delete(key)
    for _ in range(2):  # the request that restores, then one served by the store again
        r = lp_client.as_(gone.token).get("/auth/profile")
        assert r.status_code == 401, r.text
    assert kv.get(f"revok:{tid}") is not None
    assert any(kv.get(k) is not None for k in families)
    assert lp_client.as_(kept.token).get("/auth/profile").status_code == 200


def _families(runtime: Any, tenant: Any, user_id: int) -> list[str]:
    from learnplat_identity.models import RefreshToken

    with db.connection(), tenant_context(tenant), db.transaction():
        return [r.family for r in RefreshToken.select().where(RefreshToken.user == user_id)]
