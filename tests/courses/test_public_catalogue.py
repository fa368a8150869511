"""A school's catalogue is its shop window: published courses (list, search, detail with the
module outline, rating summary, images) are readable without a token, unless the school makes
its catalogue private; everything else still needs one."""

from __future__ import annotations

import pytest
from coursehelpers import image_bytes, upload

from learnplat import db
from learnplat.tenants import TenantSpec
from learnplat.testing import make_tenant


def ids(resp):
    assert resp.status_code == 200, resp.text
    return [c["id"] for c in resp.json["items"]]


@pytest.fixture
def shop(world):
    """A published course with modules, a rating and an image; and what is not published."""
    pub = world.course("Linear Algebra", description="Vectors and matrices", publish=True,
                       modules=3, tags=["math"], level="beginner")
    world.enroll(world.s, pub["id"])
    assert world.s.post(f"/courses/{pub['id']}/ratings",
                        json={"stars": 4, "comment": "Good"}).status_code == 201
    assert upload(world.t, pub["id"], image_bytes("PNG", (200, 100))).status_code == 201
    draft = world.course("Secret matrices draft", modules=1)
    pending = world.course("Pending matrices")
    assert world.t.post(f"/courses/{pending['id']}/submit").status_code == 200
    archived = world.course("Old matrices", publish=True)
    assert world.t.post(f"/courses/{archived['id']}/archive").status_code == 200
    return {"pub": pub["id"], "draft": draft["id"], "pending": pending["id"],
            "archived": archived["id"]}


def test_visitors_browse_the_published_catalogue(world, shop):
    visitor = world.client.as_(None)
    assert ids(visitor.get("/courses")) == [shop["pub"]]
    assert ids(visitor.get("/courses?q=matrices")) == [shop["pub"]]
    assert ids(visitor.get("/courses?tag=math&level=beginner")) == [shop["pub"]]
    for status in ("draft", "pending_review", "archived", "rejected"):
        assert ids(visitor.get(f"/courses?status={status}")) == []
    assert visitor.get("/courses?level=expert").status_code == 422
    r = visitor.get(f"/courses/{shop['pub']}")
    assert r.status_code == 200, r.text
    course = r.json
    assert [m["title"] for m in course["modules"]] == ["M1", "M2", "M3"]
    assert course["rating"] == {"count": 1, "average": 4.0}
    assert "progress" not in course and course["enrollment"]["status"] is None
    assert "Authorization" in r.headers["vary"] and "X-Tenant" in r.headers["vary"]
    mods = visitor.get(f"/courses/{shop['pub']}/modules")
    assert [m["title"] for m in mods.json["items"]] == ["M1", "M2", "M3"]
    first = mods.json["items"][0]["id"]
    assert visitor.get(f"/courses/{shop['pub']}/modules/{first}").json["title"] == "M1"
    image = visitor.get(course["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert visitor.get(course["thumbnail_url"]).status_code == 200


def test_everything_else_still_needs_a_token(world, shop):
    visitor = world.client.as_(None)
    for cid in (shop["draft"], shop["pending"], shop["archived"]):
        for path in ("", "/modules", "/image"):
            r = visitor.get(f"/courses/{cid}{path}")
            assert r.status_code == 404, (cid, path, r.text)
    assert visitor.get("/courses/2147483647").status_code == 404
    pub = shop["pub"]
    for method, path in (("POST", "/courses"), ("GET", f"/courses/{pub}/ratings"),
                         ("POST", f"/courses/{pub}/ratings"), ("GET", f"/courses/{pub}/history"),
                         ("POST", f"/courses/{pub}/enroll"), ("GET", "/courses/enrollments"),
                         ("GET", f"/courses/{pub}/students"), ("GET", f"/courses/{pub}/feedback"),
                         ("GET", f"/courses/{pub}/analytics"), ("PUT", f"/courses/{pub}"),
                         ("DELETE", f"/courses/{pub}"), ("POST", f"/courses/{pub}/modules"),
                         ("GET", f"/progress/{pub}")):
        r = visitor.request(method, path, json={} if method in ("POST", "PUT") else None)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
    # A bad token is still a 401, not a visitor.
    r = world.client.as_("not-a-token").get("/courses")
    assert r.status_code == 401
    # Signed-in users see what they saw before (an instructor: their own in any status).
    assert ids(world.t.get("/courses?q=matrices")) == [shop["archived"], shop["pending"],
                                                       shop["draft"], shop["pub"]]


def test_a_visitor_sees_only_the_school_they_name(world, shop, lp_runtime, lp_users,
                                                  lp_other_tenant):
    other = world.client.as_(None, tenant=lp_other_tenant)
    assert ids(other.get("/courses")) == []
    assert other.get(f"/courses/{shop['pub']}").status_code == 404
    assert other.get(f"/courses/{shop['pub']}/modules").status_code == 404
    assert other.get(f"/courses/{shop['pub']}/image").status_code == 404
    # Another school's admin, in their school: nothing of ours either.
    admin = lp_users.make("admin", tenant=lp_other_tenant)
    theirs = world.client.as_(admin.token, tenant=lp_other_tenant)
    assert shop["pub"] not in ids(theirs.get("/courses"))
    assert theirs.get(f"/courses/{shop['pub']}").status_code == 404
    # Their token in our school: 401 (a token is checked even where visitors are welcome).
    assert world.client.as_(admin.token).get("/courses").status_code == 401


def _set_catalogue(runtime, tenant, value):
    from learnplat.errors import ValidationFailed
    from learnplat.models import Tenant

    settings = {"courses": {"catalogue": value}} if value is not None else {}
    spec = TenantSpec(slug=tenant.slug, name=tenant.name, settings=settings)
    with db.connection():
        if value in ("private", "public", None):
            runtime.tenants.apply(spec)
            return
        # A typo is refused where a school is declared (`tenants apply`)...
        with pytest.raises(ValidationFailed, match=r"settings\.courses\.catalogue"):
            runtime.tenants.apply(spec)
        # ...and one stored before that check (or by hand) still keeps the catalogue closed.
        Tenant.update(settings=settings).where(Tenant.id == tenant.id).execute()
    runtime.tenants.invalidate()


@pytest.mark.parametrize("value", ["private", "Public", True, "pubilc"])
def test_a_school_can_make_its_catalogue_private(world, shop, lp_runtime, value):
    _set_catalogue(lp_runtime, world.client.tenant, value)
    visitor = world.client.as_(None)
    for path in ("/courses", f"/courses/{shop['pub']}", f"/courses/{shop['pub']}/modules",
                 f"/courses/{shop['pub']}/image", f"/courses/{shop['draft']}"):
        r = visitor.get(path)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # Members are unaffected.
    assert ids(world.s.get("/courses")) == [shop["pub"]]
    assert world.s.get(f"/courses/{shop['pub']}").status_code == 200
    _set_catalogue(lp_runtime, world.client.tenant, "public")
    assert ids(visitor.get("/courses")) == [shop["pub"]]
    _set_catalogue(lp_runtime, world.client.tenant, None)  # the default: public
    assert ids(visitor.get("/courses")) == [shop["pub"]]


def test_a_private_school_beside_a_public_one(lp_runtime, lp_app, world, shop):
    private = make_tenant(lp_runtime, settings={"courses": {"catalogue": "private"}})
    assert world.client.as_(None, tenant=private).get("/courses").status_code == 401
    assert ids(world.client.as_(None).get("/courses")) == [shop["pub"]]


def test_openapi_shows_which_routes_are_open_to_visitors(world):
    paths = world.client.get("/openapi.json").json["paths"]
    open_ops = {(m.upper(), p) for p, ops in paths.items() for m, op in ops.items()
                if {} in op.get("security", [])}
    assert open_ops >= {("GET", "/courses"), ("GET", "/courses/{course_id}"),
                        ("GET", "/courses/{course_id}/modules"),
                        ("GET", "/courses/{course_id}/modules/{module_id}"),
                        ("GET", "/courses/{course_id}/image"),
                        ("GET", "/courses/{course_id}/thumbnail")}
    listing = paths["/courses"]["get"]
    assert listing["security"] == [{}, {"bearer": []}]
    assert "private" in listing["x-anonymous"] and listing["x-permission"] == "course.read"
    assert "401" in listing["responses"]
    assert paths["/courses"]["post"]["security"] == [{"bearer": []}]
    assert paths["/courses/{course_id}/ratings"]["get"]["security"] == [{"bearer": []}]
    # Nothing outside the catalogue became optional-token by accident.
    assert all(p.startswith("/courses/") or p == "/courses" for _m, p in open_ops)
