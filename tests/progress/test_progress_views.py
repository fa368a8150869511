"""Read sides: the instructor's students list, hooks for courses and enrollment, OpenAPI."""

from __future__ import annotations

import pytest

from learnplat import db, hookimpl
from learnplat.tenancy import tenant_context


def _mark(student, course, i, completed=True):
    r = student.client.post(f"/progress/{course.id}",
                            json={"module_id": course.module_ids[i], "completed": completed})
    assert r.status_code == 200, r.text


@pytest.fixture
def busy_course(course_factory, clock):
    course = course_factory([{}, {}, {}, {}])
    students = [course.enroll() for _ in range(5)]
    for n, s in enumerate(students):  # student n completes n modules
        clock.tick(60)
        for i in range(min(n, 4)):
            _mark(s, course, i)
    return course


def test_students_list_paged_and_sorted(busy_course, lp_client, lp_users):
    course = busy_course
    teacher = lp_client.as_(course.instructor.token)
    r = teacher.get(f"/progress/{course.id}/students?sort=-percent&limit=2")
    assert r.status_code == 200, r.text
    seen, page = [], r.json
    while True:
        seen += page["items"]
        if not page["next_cursor"]:
            break
        page = teacher.get(f"/progress/{course.id}/students?sort=-percent&limit=2"
                           f"&cursor={page['next_cursor']}").json
    assert [i["percent"] for i in seen] == [100, 75, 50, 25, 0]
    assert {i["user_id"] for i in seen} == {s.id for s in course.students}
    asc = teacher.get(f"/progress/{course.id}/students?sort=percent").json["items"]
    assert [i["percent"] for i in asc] == [0, 25, 50, 75, 100]
    recent = teacher.get(f"/progress/{course.id}/students?sort=-last_activity").json["items"]
    stamps = [i["last_activity_at"] for i in recent]
    assert stamps == sorted(stamps, reverse=True)
    admin = lp_client.as_(course.admin.token)
    assert len(admin.get(f"/progress/{course.id}/students").json["items"]) == 5
    # Dropped students leave the default list.
    assert course.students[0].client.delete(f"/courses/{course.id}/enroll").status_code == 200
    assert len(teacher.get(f"/progress/{course.id}/students").json["items"]) == 4
    dropped = teacher.get(f"/progress/{course.id}/students?status=dropped").json["items"]
    assert [i["user_id"] for i in dropped] == [course.students[0].id]
    # Bad queries, other callers.
    assert teacher.get(f"/progress/{course.id}/students?sort=name").status_code == 422
    assert teacher.get(f"/progress/{course.id}/students?cursor=zzz").status_code == 422
    assert teacher.get(f"/progress/{course.id}/students?limit=1000").status_code == 422
    other_teacher = lp_client.as_(lp_users.make("instructor").token)
    assert other_teacher.get(f"/progress/{course.id}/students").status_code == 404
    assert course.students[1].client.get(f"/progress/{course.id}/students").status_code == 403
    assert lp_client.get(f"/progress/{course.id}/students").status_code == 401
    assert teacher.get("/progress/999999/students").status_code == 404


def test_other_tenant_sees_nothing(busy_course, lp_client, lp_users, lp_other_tenant):
    admin = lp_users.make("admin", tenant=lp_other_tenant)
    other = lp_client.as_(admin.token, tenant=lp_other_tenant)
    assert other.get(f"/progress/{busy_course.id}/students").status_code == 404
    # A token of this tenant is refused in the other one.
    teacher_there = lp_client.as_(busy_course.instructor.token, tenant=lp_other_tenant)
    assert teacher_there.get(f"/progress/{busy_course.id}/students").status_code == 401


def test_course_hooks_and_services(busy_course, lp_runtime, lp_tenant, lp_client):
    course = busy_course
    best = course.students[4]
    detail = best.client.get(f"/courses/{course.id}").json
    assert detail["progress"]["percent"] == 100 and detail["progress"]["completed"] is True
    teacher_detail = lp_client.as_(course.instructor.token).get(f"/courses/{course.id}").json
    assert teacher_detail.get("progress") is None
    svc = lp_runtime.service("progress")
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        stats = svc.course_stats(course.id)
        summaries = svc.summaries([course.id, 999999], best.id)
        summary = svc.summary(course.id, course.students[2].id)
        hooked = lp_runtime.hook.course_analytics(runtime=lp_runtime, course_id=course.id)
    assert stats["learners"] == 5 and stats["completed_learners"] == 1
    assert stats["completion_rate"] == 0.2 and stats["average_progress"] == 50
    assert [m["completed"] for m in stats["modules"]] == [4, 3, 2, 1]
    assert [m["learners"] for m in stats["modules"]] == [1, 1, 1, 1]
    assert summaries == {course.id: {"percent": 100, "completed": True}}
    assert summary.percent == 50 and summary.completed_modules == 2
    mine = next(h for h in hooked if h and "progress" in h and "drop_off" in h)
    assert mine["completion_rate"] == 0.2
    analytics = lp_client.as_(course.instructor.token).get(f"/courses/{course.id}/analytics")
    assert analytics.status_code == 200, analytics.text  # the courses plugin's route
    assert analytics.json["completion_rate"] == 0.2
    assert analytics.json["average_progress"] == 50
    assert [d["completed"] for d in analytics.json["drop_off"]] == [4, 3, 2, 1]
    mine = best.client.get("/courses/enrollments")  # enrollment's list, summaries hook
    assert mine.status_code == 200, mine.text
    item = next(i for i in mine.json["items"] if i["course_id"] == course.id)
    assert item["progress"]["percent"] == 100 and item["progress"]["completed"] is True


class QuizScores:
    """A stand-in for the quizzes plugin: adds its scores through progress_extras."""

    @hookimpl
    def progress_extras(self, runtime, course_id, user_id):
        return {"quizzes": {"average_score": 87.5}, "percent": -1}


def test_progress_extras_hook(course_factory, lp_runtime):
    course = course_factory([{}])
    s = course.enroll()
    plugin = QuizScores()
    lp_runtime.pm.register(plugin, name="quizscores-test")
    try:
        doc = s.client.get(f"/progress/{course.id}").json
    finally:
        lp_runtime.pm.unregister(plugin)
    assert doc["quizzes"] == {"average_score": 87.5}
    assert doc["percent"] == 0  # plugins add keys, they do not override progress's own


def test_openapi_documents_progress(lp_client):
    doc = lp_client.get("/openapi.json").json
    post = doc["paths"]["/progress/{course_id}"]["post"]
    assert "requestBody" in post and {"200", "409", "422"} <= set(post["responses"])
    assert "get" in doc["paths"]["/progress/{course_id}/students"]
