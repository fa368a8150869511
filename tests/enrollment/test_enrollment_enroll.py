"""POST/DELETE /courses/{id}/enroll: idempotent enrollment, drop and reactivation, bad input,
events recorded in the change's transaction, before_action vetoes."""

from __future__ import annotations

from typing import Any

import pytest
from enrollhelpers import in_tenant, publish_course
from learnplat_enrollment.events import ENROLL
from learnplat_enrollment.models import Enrollment

from learnplat.errors import Vetoed
from learnplat.models import OutboxEvent
from learnplat.plugin import Veto


def test_enroll_201_then_200_same(lp_client, lp_users, published):
    student = lp_users.make("student")
    s = lp_client.as_(student.token)
    first = s.post(f"/courses/{published.id}/enroll")
    assert first.status_code == 201, first.text
    body = first.json
    assert body["status"] == "active" and body["course_id"] == published.id
    assert body["user_id"] == student.id and body["source"] == "self"
    assert body["created_at"].endswith("Z") and body["dropped_at"] is None
    again = s.post(f"/courses/{published.id}/enroll")
    assert again.status_code == 200
    assert again.json["id"] == body["id"]


def test_bad_enrollments_are_refused_and_write_nothing(lp_client, lp_users, published,
                                                       lp_other_tenant, lp_tenant):
    teacher = lp_client.as_(published.instructor.token)
    admin = lp_client.as_(published.admin.token)
    # Staff do not enroll themselves: 403.
    assert teacher.post(f"/courses/{published.id}/enroll").status_code == 403
    assert admin.post(f"/courses/{published.id}/enroll").status_code == 403
    s = lp_client.as_(lp_users.make("student").token)
    # A draft, an archived and a missing course: 404.
    draft = teacher.post("/courses", json={"title": "Draft"}).json["id"]
    assert s.post(f"/courses/{draft}/enroll").status_code == 404
    archived = publish_course(lp_client, lp_users, title="Old")
    assert lp_client.as_(archived.instructor.token).post(
        f"/courses/{archived.id}/archive").status_code == 200
    r = s.post(f"/courses/{archived.id}/enroll")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    for missing in (999999999, 2**70, 0):
        assert s.post(f"/courses/{missing}/enroll").status_code == 404
    # Another school's student cannot reach this school's course.
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.post(f"/courses/{published.id}/enroll").status_code == 404
    assert other.delete(f"/courses/{published.id}/enroll").status_code == 404
    # ... and this school's token is refused there.
    assert lp_client.as_(s.token, tenant=lp_other_tenant).post(
        f"/courses/{published.id}/enroll").status_code == 401
    # No token: 401.
    assert lp_client.post(f"/courses/{published.id}/enroll").status_code == 401
    with in_tenant(lp_tenant):
        assert Enrollment.select().count() == 0


def test_drop_keeps_the_record_and_enrolling_again_reactivates_it(
        lp_client, lp_users, published, lp_runtime):
    student = lp_users.make("student")
    s = lp_client.as_(student.token)
    url = f"/courses/{published.id}/enroll"
    assert s.delete(url).status_code == 404  # never enrolled
    eid = s.post(url).json["id"]
    status = lp_runtime.hook.course_enrollment_status
    dropped = s.delete(url)
    assert dropped.status_code == 200, dropped.text
    assert dropped.json["id"] == eid and dropped.json["status"] == "dropped"
    assert dropped.json["dropped_at"] is not None
    assert s.delete(url).json["status"] == "dropped"  # dropping again changes nothing
    mine = s.get("/courses/enrollments").json["items"]
    assert [(e["id"], e["status"]) for e in mine] == [(eid, "dropped")]
    with in_tenant(lp_client.tenant):
        assert status(runtime=lp_runtime, course_id=published.id, user_id=student.id) \
            == "dropped"
    back = s.post(url)
    assert back.status_code == 200  # the same enrollment, not a new one
    assert back.json["id"] == eid and back.json["status"] == "active"
    assert back.json["dropped_at"] is None
    with in_tenant(lp_client.tenant):
        assert status(runtime=lp_runtime, course_id=published.id, user_id=student.id) \
            == "active"
        svc = lp_runtime.service("enrollment")
        assert svc.get(published.id, student.id).id == eid
        assert svc.active_count(published.id) == 1
        assert Enrollment.select().where(Enrollment.course_id == published.id).count() == 1


def test_service_api_for_other_plugins(lp_client, lp_users, published, lp_runtime):
    from learnplat.errors import NotFound, PermissionDenied

    student = lp_users.make("student")
    s = lp_client.as_(student.token)
    svc = lp_runtime.service("enrollment")
    principal = lp_runtime.service("identity").principal_for
    with in_tenant(lp_client.tenant):
        who = principal(student.token)
        assert svc.get(published.id, student.id) is None
        with pytest.raises(PermissionDenied):
            svc.require_active(published.id, who)
        with pytest.raises(NotFound):
            svc.require_active(999999999, who)
    s.post(f"/courses/{published.id}/enroll")
    with in_tenant(lp_client.tenant):
        info = svc.require_active(published.id, who)
        assert (info.course_id, info.user_id, info.status) == (published.id, student.id,
                                                                 "active")
    s.delete(f"/courses/{published.id}/enroll")
    with in_tenant(lp_client.tenant):
        with pytest.raises(PermissionDenied):
            svc.require_active(published.id, who)
        assert lp_runtime.hook.course_has_learners(runtime=lp_runtime,
                                                   course_id=published.id) == [True]


def test_events_are_recorded_in_the_transaction_and_delivered_after_commit(
        lp_client, lp_users, published, lp_runtime, event_recorder):
    student = lp_users.make("student")
    s = lp_client.as_(student.token)
    url = f"/courses/{published.id}/enroll"
    eid = s.post(url).json["id"]
    s.post(url)  # idempotent: no second event
    s.delete(url)
    s.delete(url)  # no second drop event
    s.post(url)  # reactivation
    lp_runtime.events.dispatch_pending()
    mine = [e for e in event_recorder.events if e.tenant_id == lp_client.tenant.id
            and e.name.startswith("enrollment.")]
    assert [e.name for e in mine] == ["enrollment.created.v1", "enrollment.dropped.v1",
                                      "enrollment.created.v1"]
    for e in mine:
        assert {"enrollment_id": eid, "course_id": published.id,
                "user_id": student.id}.items() <= e.payload.items()
    assert mine[0].payload["reactivated"] is False and mine[0].payload["source"] == "self"
    assert mine[2].payload["reactivated"] is True


class _Veto:
    """A veto that refuses every enrollment (exercises runtime.before)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, runtime, tenant, principal, data):
        self.seen.append(dict(data))
        raise Vetoed("enrollment is paused for maintenance")


@pytest.fixture
def veto(lp_runtime):
    refuse = _Veto()
    declared = Veto(ENROLL, "pause", refuse, plugin="test-veto")
    lp_runtime.registry.add_veto(declared)
    yield refuse
    lp_runtime.registry.remove_veto(declared)


def test_a_veto_refuses_with_409_and_nothing_is_written(lp_client, lp_users, published,
                                                        veto, lp_runtime, lp_tenant):
    student = lp_users.make("student")
    r = lp_client.as_(student.token).post(f"/courses/{published.id}/enroll")
    assert r.status_code == 409
    assert "maintenance" in r.json["detail"]
    assert veto.seen == [{"course_id": published.id, "user_id": student.id, "source": "self"}]
    with in_tenant(lp_tenant):
        assert Enrollment.select().count() == 0
        assert OutboxEvent.select().where((OutboxEvent.tenant_id == lp_tenant.id)
                                          & OutboxEvent.name.startswith("enrollment.")
                                          ).count() == 0
