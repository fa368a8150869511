"""Conditional requests through the app (issue 26, item 4): ETags on the resources clients poll,
If-None-Match answered 304 with no body (the cached course page's without building it), If-Match
on updates and deletes of courses, modules, quizzes and user accounts answered 412 with the
current ETag when stale, and nothing written then."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

import learnplat.http.conditional as conditional
from learnplat.testing import count_queries


class Cast:
    """An instructor's published course with a module and a quiz, an admin, an enrolled
    student and a second student: clients for each."""

    def __init__(self, client: Any, users: Any):
        self.teacher, self.admin = users.make("instructor"), users.make("admin")
        self.student, self.other = users.make("student"), users.make("student")
        self.t, self.a = client.as_(self.teacher.token), client.as_(self.admin.token)
        self.s, self.o = client.as_(self.student.token), client.as_(self.other.token)
        self.anon = client
        r = self.t.post("/courses", json={"title": "Conditional"})
        assert r.status_code == 201, r.text
        self.cid = r.json["id"]
        r = self.t.post(f"/courses/{self.cid}/modules", json={"title": "M1"})
        assert r.status_code == 201, r.text
        self.mid = r.json["id"]
        r = self.t.post(f"/courses/{self.cid}/modules", json={"title": "Quiz", "kind": "text"})
        self.qmid = r.json["id"]
        r = self.t.post(f"/courses/{self.cid}/modules/{self.qmid}/quiz", json={
            "title": "Q", "pass_mark": 50, "questions": [
                {"type": "true_false", "prompt": "True?", "answer": True, "points": 1}]})
        assert r.status_code == 201, r.text
        self.qid = r.json["id"]
        assert self.t.post(f"/courses/{self.cid}/submit").status_code == 200
        assert self.a.post(f"/courses/{self.cid}/approve").status_code == 200
        assert self.s.post(f"/courses/{self.cid}/enroll").status_code == 201
        self.course = f"/courses/{self.cid}"
        self.module = f"{self.course}/modules/{self.mid}"
        self.quiz = f"{self.course}/modules/{self.qmid}/quiz/{self.qid}"


@pytest.fixture
def cast(lp_client: Any, lp_users: Any) -> Cast:
    return Cast(lp_client, lp_users)


def _get(client: Any, path: str, tag: str | None = None) -> Any:
    return client.get(path, headers={"If-None-Match": tag} if tag else {})


def _poll(client: Any, path: str) -> str:
    """GET twice (the same ETag), then If-None-Match: 304, no body, the 200's headers."""
    first = client.get(path)
    assert first.status_code == 200, first.text
    tag = first.headers["ETag"]
    assert tag == conditional.etag_of(first.content)  # the validator of the bytes sent
    again = client.get(path)
    assert again.headers["ETag"] == tag and again.content == first.content
    r = _get(client, path, tag)
    assert r.status_code == 304, (path, r.status_code, r.text)
    assert r.content == b""
    assert r.headers["ETag"] == tag
    for name in ("Cache-Control", "Vary"):
        assert r.headers.get(name) == first.headers.get(name), name
    assert "private" in first.headers["Cache-Control"]
    return tag


def test_the_course_page_polls_with_304(cast):
    tag = _poll(cast.s, cast.course)
    for header in (f"W/{tag}", f'"stale", {tag}', "*"):
        assert _get(cast.s, cast.course, header).status_code == 304, header
    r = _get(cast.s, cast.course, '"stale"')
    assert r.status_code == 200 and r.headers["ETag"] == tag and r.json["id"] == cast.cid
    # unreadable: ignored, the page is sent
    assert _get(cast.s, cast.course, tag.strip('"')).status_code == 200
    # The anonymous page is the shared one: it varies on who asks and on the school.
    r = cast.anon.get(cast.course)
    assert r.status_code == 200 and "Authorization" in r.headers["Vary"]
    assert _get(cast.anon, cast.course, r.headers["ETag"]).status_code == 304


def test_every_polled_resource_has_an_etag(cast):
    nid = _notify(cast)
    for path in ("/auth/profile", f"/users/{cast.student.id}", "/courses?limit=5",
                 "/courses/enrollments", f"/progress/{cast.cid}", "/notifications",
                 f"/notifications/{nid}", "/notifications/unread-count",
                 f"{cast.course}/modules", cast.module, f"{cast.quiz}/result"):
        if path.endswith("/result"):
            assert cast.s.post(f"{cast.quiz}/submit", json={"answers": {}}).status_code == 200
        _poll(cast.s, path)


def _notify(cast: Cast) -> int:
    r = cast.a.post("/notifications", json={"title": "Hello", "body": "there",
                                             "user_id": cast.student.id})
    assert r.status_code == 201, r.text
    return r.json["id"]


def test_the_etag_changes_with_the_resource_and_with_who_asks(cast):
    student = _poll(cast.s, cast.course)
    teacher = cast.t.get(cast.course).headers["ETag"]
    other = cast.o.get(cast.course).headers["ETag"]
    # The enrolled student's page shows their enrollment and progress: another tag than the
    # instructor's or a student's who is not enrolled (those two see the same page).
    assert student != teacher and student != other
    assert cast.s.get(cast.course).json != cast.t.get(cast.course).json
    assert cast.t.put(cast.course, json={"title": "Renamed"}).status_code == 200
    r = _get(cast.s, cast.course, student)
    assert r.status_code == 200 and r.json["title"] == "Renamed"
    assert r.headers["ETag"] != student
    # the student's notifications: a new one changes the list's tag
    tag = _poll(cast.s, "/notifications")
    _notify(cast)
    assert _get(cast.s, "/notifications", tag).status_code == 200


def test_another_school_gets_a_404_not_a_304(cast, lp_client, lp_users, lp_other_tenant):
    tag = cast.s.get(cast.course).headers["ETag"]
    outsider = lp_client.as_(lp_users.make("admin", tenant=lp_other_tenant).token,
                             tenant=lp_other_tenant)
    assert _get(outsider, cast.course, tag).status_code == 404
    assert outsider.put(cast.course, json={"title": "x"}, headers={"If-Match": "*"}
                        ).status_code == 404


def test_the_cached_page_answers_304_without_building_it(cast, monkeypatch):
    cast.s.get(cast.course)
    tag = cast.s.get(cast.course).headers["ETag"]  # the page is in the answer cache now
    hashed = []
    real = conditional.etag_of
    monkeypatch.setattr(conditional, "etag_of", lambda body: hashed.append(1) or real(body))
    with count_queries() as q:
        r = _get(cast.s, cast.course, tag)
    assert r.status_code == 304
    # Only the tenant lookup (not cached in the tests' settings), none of the page's own
    # queries (course, modules, enrollment, progress, certificates), and no hashing: the ETag
    # was stored with the cached bytes.
    assert not [s for s in q.queries if "courses_" in s or "enrollment" in s
                or "progress" in s or "certificates" in s], q.queries
    assert hashed == []


def test_if_match_on_a_course(cast):
    tag = cast.t.get(cast.course).headers["ETag"]
    assert cast.t.put(cast.course, json={"title": "First"}).status_code == 200  # no If-Match
    r = cast.t.put(cast.course, json={"title": "Second"}, headers={"If-Match": tag})
    assert r.status_code == 412, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    current = cast.t.get(cast.course)
    assert current.json["title"] == "First"  # nothing written
    assert r.json["code"] == "precondition_failed"
    assert r.headers["ETag"] == r.json["etag"] == current.headers["ETag"]
    ok = cast.t.put(cast.course, json={"title": "Second"}, headers={"If-Match": r.json["etag"]})
    assert ok.status_code == 200, ok.text
    after = cast.t.get(cast.course)
    assert after.json["title"] == "Second"
    assert ok.headers["ETag"] == after.headers["ETag"]  # the next If-Match, ready to use
    # a weak tag never matches If-Match; "*" matches any version; a malformed one is a 400
    weak = cast.t.put(cast.course, json={"title": "x"},
                      headers={"If-Match": f"W/{after.headers['ETag']}"})
    assert weak.status_code == 412
    assert cast.t.put(cast.course, json={"title": "Third"}, headers={"If-Match": "*"}
                      ).status_code == 200
    bad = cast.t.put(cast.course, json={"title": "x"}, headers={"If-Match": "abc"})
    assert bad.status_code == 400 and "double quotes" in bad.json["detail"]
    # a module change changes the course page, so the course's tag is stale after it
    tag = cast.t.get(cast.course).headers["ETag"]
    assert cast.t.put(cast.module, json={"title": "M1 renamed"}).status_code == 200
    assert cast.t.delete(cast.course, headers={"If-Match": tag}).status_code == 412
    assert cast.t.get(cast.course).status_code == 200  # not deleted, not archived
    assert cast.t.get(cast.course).json["status"] == "published"


def test_if_match_on_a_module_a_quiz_and_a_user(cast):
    for path, edit in ((cast.module, {"title": "Edited"}),
                       (cast.quiz, {"title": "Edited"}),
                       (f"/users/{cast.student.id}", {"name": "Edited"})):
        who = cast.a if path.startswith("/users") else cast.t
        tag = who.get(path).headers["ETag"]
        assert who.put(path, json=edit, headers={"If-Match": tag}).status_code == 200, path
        stale = who.put(path, json={**edit}, headers={"If-Match": tag})
        assert stale.status_code == 412, path
        current = who.get(path)
        assert stale.headers["ETag"] == current.headers["ETag"], path
        assert current.json.get("title", current.json.get("name")) == "Edited"
        # deletes: stale first (nothing happens), then current
        r = who.delete(path, headers={"If-Match": tag})
        assert r.status_code == 412, path
        assert who.get(path).status_code == 200
    assert cast.t.delete(cast.quiz, headers={"If-Match": cast.t.get(cast.quiz).headers["ETag"]}
                         ).status_code == 204
    assert cast.t.get(cast.quiz).status_code == 404
    # the student's own profile, edited by the student
    me = f"/users/{cast.student.id}"
    tag = cast.s.get(me).headers["ETag"]
    r = cast.s.put(me, json={"bio": "hi"}, headers={"If-Match": tag})
    assert r.status_code == 200 and r.headers["ETag"] == cast.s.get(me).headers["ETag"]


def test_the_openapi_document_shows_the_conditional_parts(cast):
    doc = cast.anon.get("/openapi.json").json
    get = doc["paths"]["/courses/{course_id}"]["get"]
    assert any(p.get("name") == "If-None-Match" for p in get["parameters"])
    assert "ETag" in get["responses"]["200"]["headers"]
    assert "304" in get["responses"]
    put = doc["paths"]["/courses/{course_id}"]["put"]
    assert any(p.get("name") == "If-Match" for p in put["parameters"])
    assert "412" in put["responses"] and "ETag" in put["responses"]["200"]["headers"]
    post = doc["paths"]["/courses"]["post"]
    assert not any(p.get("name") == "If-Match" for p in post["parameters"])


def _race(base: str, cast: Cast, tenant: str, tag: str) -> dict[str, requests.Response]:
    """The owner and an admin PUT the course at the same moment, both with If-Match `tag`."""
    barrier = threading.Barrier(2)
    results: dict[str, requests.Response] = {}

    def save(who: str, token: str) -> None:
        barrier.wait()
        results[who] = requests.put(
            f"{base}{cast.course}", json={"title": f"by {who}"}, timeout=30,
            headers={"Authorization": f"Bearer {token}", "X-Tenant": tenant, "If-Match": tag})

    threads = [threading.Thread(target=save, args=(who, user.token))
               for who, user in (("owner", cast.teacher), ("admin", cast.admin))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def test_two_racing_updates_with_one_etag_one_wins(cast, lp_live_server, lp_tenant):
    """Two instructors (the owner and an admin) read the course and save at once through a
    real gunicorn (2 workers x 4 threads): the check and the write are one transaction under
    the course's lock, so exactly one passes; the other gets 412 and the winner's ETag."""
    for _round in range(3):
        tag = cast.t.get(cast.course).headers["ETag"]
        results = _race(lp_live_server, cast, lp_tenant.slug, tag)
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 412], {k: (r.status_code, r.text) for k, r in results.items()}
        winner = next(k for k, r in results.items() if r.status_code == 200)
        loser = next(r for r in results.values() if r.status_code == 412)
        assert cast.t.get(cast.course).json["title"] == f"by {winner}"
        assert loser.headers["ETag"] == results[winner].headers["ETag"]
