"""Ratings, feedback threads, analytics and the hooks other plugins implement."""

from __future__ import annotations

import pytest

from learnplat import hookimpl


def test_ratings_enrolled_only_one_per_student_replace_keeps_average(world):
    cid = world.course("Rated", publish=True)["id"]
    s1, s2 = world.s, world.as_new("student")
    r = s1.post(f"/courses/{cid}/ratings", json={"stars": 5, "comment": "Great"})
    assert r.status_code == 403 and r.json["code"] == "not_enrolled"
    world.enroll(s1, cid)
    world.enroll(s2, cid)
    r = s1.post(f"/courses/{cid}/ratings", json={"stars": 5, "comment": "Great"})
    assert r.status_code == 201, r.text
    first = r.json["id"]
    assert s2.post(f"/courses/{cid}/ratings", json={"stars": 2}).status_code == 201
    assert world.s.get(f"/courses/{cid}").json["rating"] == {"count": 2, "average": 3.5}
    r = s1.post(f"/courses/{cid}/ratings", json={"stars": 3, "comment": "Meh after all"})
    assert r.status_code == 200 and r.json["id"] == first and r.json["stars"] == 3
    assert world.s.get(f"/courses/{cid}").json["rating"] == {"count": 2, "average": 2.5}
    assert [c["rating"] for c in world.s.get("/courses").json["items"] if c["id"] == cid] == [
        {"count": 2, "average": 2.5}]
    page = world.s.get(f"/courses/{cid}/ratings?limit=1").json
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = world.s.get(f"/courses/{cid}/ratings?cursor={page['next_cursor']}").json
    assert {x["stars"] for x in page["items"] + rest["items"]} == {2, 3}
    for bad in ({"stars": 0}, {"stars": 6}, {"stars": "five"}, {"comment": "x"},
                {"stars": 3, "comment": "x" * 5001}, {"stars": 3, "extra": True}):
        r = s1.post(f"/courses/{cid}/ratings", json=bad)
        assert r.status_code == 422, bad
    # Instructors and admins do not rate; a dropped student no longer may.
    assert world.t.post(f"/courses/{cid}/ratings", json={"stars": 5}).status_code == 403
    assert s2.delete(f"/courses/{cid}/enroll").status_code == 200
    assert s2.post(f"/courses/{cid}/ratings", json={"stars": 1}).status_code == 403
    assert world.s.get(f"/courses/{cid}").json["rating"]["average"] == 2.5


def test_instructor_replies_to_a_rating(world, outsider):
    cid = world.course("Replies", publish=True)["id"]
    world.enroll(world.s, cid)
    rid = world.s.post(f"/courses/{cid}/ratings", json={"stars": 4}).json["id"]
    r = world.t.put(f"/courses/{cid}/ratings/{rid}/reply", json={"body": "Thanks!"})
    assert r.status_code == 200 and r.json["reply"]["body"] == "Thanks!"
    assert r.json["reply"]["author_id"] == world.teacher.id
    assert world.s.get(f"/courses/{cid}/ratings").json["items"][0]["reply"]["body"] == "Thanks!"
    assert world.s.put(f"/courses/{cid}/ratings/{rid}/reply", json={"body": "x"}
                       ).status_code == 403
    assert world.as_new("instructor").put(f"/courses/{cid}/ratings/{rid}/reply",
                                          json={"body": "x"}).status_code == 404
    assert world.t.put(f"/courses/{cid}/ratings/999999/reply", json={"body": "x"}
                       ).status_code == 404
    r = world.a.put(f"/courses/{cid}/ratings/{rid}/reply", json={"body": ""})
    assert r.status_code == 200 and r.json["reply"] is None
    assert outsider.get(f"/courses/{cid}/ratings").status_code == 404
    assert outsider.put(f"/courses/{cid}/ratings/{rid}/reply", json={"body": "x"}
                        ).status_code == 404


def test_feedback_threads_are_private(world, outsider):
    cid = world.course("Questions", publish=True)["id"]
    s1, s2 = world.s, world.as_new("student")
    r = s1.post(f"/courses/{cid}/feedback", json={"subject": "Week 2", "body": "Stuck on Q3"})
    assert r.status_code == 201, r.text
    tid = r.json["id"]
    assert r.json["messages"][0]["body"] == "Stuck on Q3"
    s2.post(f"/courses/{cid}/feedback", json={"subject": "Other", "body": "Hello"})
    # Threaded replies by the instructor and the student.
    assert world.t.post(f"/courses/{cid}/feedback/{tid}/messages", json={"body": "Hint: ..."}
                        ).status_code == 201
    assert s1.post(f"/courses/{cid}/feedback/{tid}/messages", json={"body": "Got it"}
                   ).status_code == 201
    thread = s1.get(f"/courses/{cid}/feedback/{tid}").json
    assert [m["body"] for m in thread["messages"]] == ["Stuck on Q3", "Hint: ...", "Got it"]
    assert thread["message_count"] == 3
    # Visibility: each student their own; the instructor and admins all; nobody else.
    assert [t["id"] for t in s1.get(f"/courses/{cid}/feedback").json["items"]] == [tid]
    assert len(s2.get(f"/courses/{cid}/feedback").json["items"]) == 1
    assert len(world.t.get(f"/courses/{cid}/feedback").json["items"]) == 2
    assert len(world.a.get(f"/courses/{cid}/feedback").json["items"]) == 2
    assert s2.get(f"/courses/{cid}/feedback/{tid}").status_code == 404
    assert s2.post(f"/courses/{cid}/feedback/{tid}/messages", json={"body": "x"}
                   ).status_code == 404
    other_teacher = world.as_new("instructor")
    assert other_teacher.get(f"/courses/{cid}/feedback/{tid}").status_code == 404
    assert other_teacher.get(f"/courses/{cid}/feedback").json["items"] == []
    assert world.t.post(f"/courses/{cid}/feedback", json={"subject": "x", "body": "y"}
                        ).status_code == 403
    for bad in ({"subject": "", "body": "x"}, {"subject": "x"}, {"subject": "x", "body": ""}):
        assert s1.post(f"/courses/{cid}/feedback", json=bad).status_code == 422
    assert outsider.get(f"/courses/{cid}/feedback").status_code == 404
    assert outsider.get(f"/courses/{cid}/feedback/{tid}").status_code == 404
    assert outsider.post(f"/courses/{cid}/feedback/{tid}/messages", json={"body": "x"}
                         ).status_code == 404
    draft = world.course("Not yet")["id"]
    assert s1.post(f"/courses/{draft}/feedback", json={"subject": "x", "body": "y"}
                   ).status_code == 404


class FakeLearningPlugin:
    """Stands in for the enrollment/progress plugins' course_analytics and detail extras."""

    @hookimpl(trylast=True)
    def course_analytics(self, runtime, course_id):
        return {"enrollments": {"total": 3, "active": 2,
                                "over_time": [{"date": "2025-01-01", "count": 3}]},
                "completion_rate": 0.5, "average_progress": 61.5,
                "drop_off": [{"module_id": 1, "learners": 1}]}

    @hookimpl(trylast=True)
    def course_detail_extras(self, runtime, course_id, principal):
        if principal is not None and principal.role == "student":
            return {"progress": {"percent": 40}, "id": -1}  # "id" must not be replaced
        return None


class QuizPlugin:
    @hookimpl(trylast=True)
    def course_analytics(self, runtime, course_id):
        return {"average_quiz_score": 77.0, "enrollments": {"certified": 1}}


@pytest.fixture
def fake_plugins(lp_runtime):
    plugins = [FakeLearningPlugin(), QuizPlugin()]
    for i, p in enumerate(plugins):
        lp_runtime.pm.register(p, name=f"courses-test-fake-{i}")
    yield plugins
    for p in plugins:
        lp_runtime.pm.unregister(p)


def test_analytics_defaults_without_plugins(world, outsider):
    cid = world.course("Stats", publish=True, modules=2)["id"]
    world.enroll(world.s, cid)
    world.s.post(f"/courses/{cid}/ratings", json={"stars": 4})
    world.s.post(f"/courses/{cid}/feedback", json={"subject": "x", "body": "y"})
    r = world.t.get(f"/courses/{cid}/analytics")
    assert r.status_code == 200, r.text
    a = r.json
    assert a["ratings"] == {"count": 1, "average": 4.0,
                            "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    assert a["feedback"] == {"threads": 1, "messages": 1}
    assert [m["title"] for m in a["modules"]] == ["M1", "M2"]
    for key in ("completion_rate", "average_progress", "average_quiz_score"):
        assert key in a
    assert isinstance(a["enrollments"]["total"], int)
    assert world.a.get(f"/courses/{cid}/analytics").status_code == 200
    assert world.s.get(f"/courses/{cid}/analytics").status_code == 403
    assert world.as_new("instructor").get(f"/courses/{cid}/analytics").status_code == 404
    assert outsider.get(f"/courses/{cid}/analytics").status_code == 404


def test_analytics_and_detail_merge_plugin_sections(world, fake_plugins):
    cid = world.course("Merged", publish=True)["id"]
    a = world.t.get(f"/courses/{cid}/analytics").json
    assert a["completion_rate"] == 0.5 and a["average_progress"] == 61.5
    assert a["average_quiz_score"] == 77.0
    assert a["enrollments"]["total"] == 3 and a["enrollments"]["certified"] == 1
    assert a["enrollments"]["over_time"] == [{"date": "2025-01-01", "count": 3}]
    assert a["drop_off"] == [{"module_id": 1, "learners": 1}]
    detail = world.s.get(f"/courses/{cid}").json
    assert detail["progress"] == {"percent": 40} and detail["id"] == cid
    assert "progress" not in world.t.get(f"/courses/{cid}").json


def test_analytics_with_the_installed_plugins_is_cheap(world):
    """Whatever the installed plugins answer, analytics cost no query per enrollment."""
    from learnplat.testing import count_queries

    cid = world.course("Cheap", publish=True, modules=3)["id"]
    world.t.get(f"/courses/{cid}/analytics")
    with count_queries() as few:
        world.t.get(f"/courses/{cid}/analytics")
    for _ in range(5):
        world.enroll(world.as_new("student"), cid)
    with count_queries() as more:
        assert world.t.get(f"/courses/{cid}/analytics").status_code == 200
    assert len(more.queries) == len(few.queries)
