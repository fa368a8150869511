"""Catalogue pages are cached per process under the tenant's catalogue generation: a page
served again costs no query, and any change to a course is seen on the next request."""

from __future__ import annotations

import pytest

from learnplat.testing import count_queries, make_tenant


def publish(client, users, title="Cached course"):
    teacher, admin = users.make("instructor"), users.make("admin")
    t = client.as_(teacher.token)
    cid = t.post("/courses", json={"title": title, "description": "d"}).json["id"]
    t.post(f"/courses/{cid}/modules", json={"title": "M"})
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert client.as_(admin.token).post(f"/courses/{cid}/approve").status_code == 200
    return cid, t, client.as_(admin.token)


def titles(r):
    return [c["title"] for c in r.json["items"]]


def test_a_repeated_page_is_served_without_queries(lp_client, lp_users):
    publish(lp_client, lp_users)
    student = lp_client.as_(lp_users.make("student").token)
    first = lp_client.get("/courses?limit=5")
    lp_client.get("/courses?limit=5")
    with count_queries() as q:
        again = lp_client.get("/courses?limit=5")
        as_student = student.get("/courses?limit=5")
    assert again.status_code == as_student.status_code == 200
    assert again.json == first.json == as_student.json
    # Visitors and students share the page; only the tenant lookup is not cached in tests
    # (tenancy.cache_seconds = 0), nothing of the catalogue is read again.
    assert not [s for s in q.queries if "courses_" in s], q.queries


def test_every_change_to_a_course_is_seen_at_once(lp_client, lp_users):
    cid, teacher, admin = publish(lp_client, lp_users, "Before")
    for _ in range(3):
        assert titles(lp_client.get("/courses")) == ["Before"]
    r = teacher.put(f"/courses/{cid}", json={"title": "After"})
    assert r.status_code == 200, r.text
    assert titles(lp_client.get("/courses")) == ["After"]
    student = lp_client.as_(lp_users.make("student").token)
    assert student.post(f"/courses/{cid}/enroll").status_code == 201
    assert student.post(f"/courses/{cid}/ratings", json={"stars": 4}).status_code in (200, 201)
    assert lp_client.get("/courses").json["items"][0]["rating"]["count"] == 1
    assert admin.post(f"/courses/{cid}/archive").status_code == 200
    assert titles(lp_client.get("/courses")) == []


def test_views_that_differ_by_caller_are_not_shared(lp_client, lp_users):
    publish(lp_client, lp_users, "Published")
    teacher = lp_client.as_(lp_users.make("instructor").token)
    teacher.post("/courses", json={"title": "My draft"})
    for _ in range(3):
        assert titles(lp_client.get("/courses")) == ["Published"]
    assert set(titles(teacher.get("/courses"))) == {"Published", "My draft"}
    admin = lp_client.as_(lp_users.make("admin").token)
    assert set(titles(admin.get("/courses"))) == {"Published", "My draft"}
    assert titles(lp_client.get("/courses")) == ["Published"]


def test_another_tenant_never_gets_a_cached_page(lp_runtime, lp_client, lp_users):
    publish(lp_client, lp_users, "Ours")
    for _ in range(3):
        assert titles(lp_client.get("/courses")) == ["Ours"]
    other = make_tenant(lp_runtime)
    assert titles(lp_client.as_(None, tenant=other).get("/courses")) == []


def test_servers_see_a_change_made_through_another(lp_runtime, lp_database, lp_client, lp_users,
                                                   tmp_path):
    if lp_runtime.redis is None:
        pytest.skip("needs Redis (LEARNPLAT_TEST_BACKEND=postgres)")
    import requests

    from learnplat.testing import serve_with_gunicorn

    cid, teacher, _ = publish(lp_client, lp_users, "One")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    hdrs = {"X-Tenant": lp_client.tenant.slug}
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "a", workers=1) as a, \
            serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "b", workers=1) as b:
        for _ in range(4):
            page = requests.get(f"{a}/courses", headers=hdrs, timeout=10).json()
            assert [c["title"] for c in page["items"]] == ["One"]
        r = requests.put(f"{b}/courses/{cid}", json={"title": "Two"}, timeout=10,
                         headers={**hdrs, "Authorization": f"Bearer {teacher.token}"})
        assert r.status_code == 200, r.text
        page = requests.get(f"{a}/courses", headers=hdrs, timeout=10).json()
        assert [c["title"] for c in page["items"]] == ["Two"]
