"""Rate limits of signed media URLs: a request through a URL signed for a user is charged to
that user (and the school), not to the client address, so a class behind one NAT address
watching videos does not share one visitor's budget; forged, altered or expired URLs stay on
the address's budget, and one user hammering is still refused."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import falcon.testing
import pytest
from learnplat_media import signing
from mediahelpers import Stage, mp4_bytes, upload

from learnplat.ratelimit import Limiter
from learnplat.settings import LimitSettings
from learnplat.testing import Client

# Small budgets that refill slowly, so that the count is what decides, not the clock: the
# address's budget (30) is far below what the class sends (40 x 10), each user's (20) above
# what one student's player sends (10).
ANONYMOUS_BURST = 30
USER_BURST = 20
CLASS_SIZE = 40
RANGES_PER_STUDENT = 10

_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address no other test has used (budgets outlive a test)."""
    return f"203.0.{next(_addresses) % 250}.{uuid.uuid4().int % 250 + 1}"


@pytest.fixture
def limits_on(lp_runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Turns the limits on (tests run with them off) once the stage is set up."""

    def use() -> None:
        settings = LimitSettings(
            enabled=True, user_burst=USER_BURST, user_rate=0.05, heartbeat_burst=3,
            heartbeat_rate=0.05, tenant_burst=100_000, tenant_rate=1_000,
            anonymous_burst=ANONYMOUS_BURST, anonymous_rate=0.05)
        monkeypatch.setattr(lp_runtime, "limits", Limiter(settings, lp_runtime.kv))

    return use


def _local(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def fetch(app: Any, url: str, addr: str, headers: dict[str, str] | None = None
          ) -> falcon.testing.Result:
    # As a browser's <video> element asks: no token, no tenant header, from the school's NAT.
    return Client(app).get(_local(url), headers=headers or {}, remote_addr=addr)


def _video_url_for_each(stage: Stage, lp_users: Any, count: int) -> list[tuple[int, str]]:
    """`count` enrolled students, each with the signed URL the API issued to them."""
    out = []
    for _ in range(count):
        student = lp_users.make("student")
        client = stage.client.as_(student.token)
        assert client.post(f"/courses/{stage.course_id}/enroll").status_code == 201
        r = client.get(stage.path())
        assert r.status_code == 200, r.text
        out.append((student.id, r.json["url"]))
    return out


@pytest.mark.parametrize("names_school", [False, True], ids=["player", "app"])
def test_a_class_behind_one_address_watches_without_429(stage, lp_users, lp_app, limits_on,
                                                        names_school):
    """As a browser's player asks (the URL alone), and as a school's app asks (with X-Tenant,
    as it sends on every request)."""
    data = mp4_bytes(60, payload=20_000)
    assert upload(stage.t, stage.course_id, stage.module_ids[0], data).status_code == 201
    urls = _video_url_for_each(stage, lp_users, CLASS_SIZE)
    limits_on()
    nat = fresh_address()
    sent = 0
    # The players interleave, as a class pressing play together does.
    for i in range(RANGES_PER_STUDENT):
        for user_id, url in urls:
            start = i * 1000
            headers = {"Range": f"bytes={start}-{start + 999}"}
            if names_school:
                headers["X-Tenant"] = stage.users.tenant.slug
            r = fetch(lp_app, url, nat, headers)
            sent += 1
            assert r.status_code == 206, (user_id, i, r.status_code, r.text)
            assert r.content == data[start:start + 1000]
            # Charged to the student and the school, never to the address.
            policy = r.headers["ratelimit-policy"]
            assert '"user"' in policy and '"tenant"' in policy and "anonymous" not in policy
    assert sent == CLASS_SIZE * RANGES_PER_STUDENT > ANONYMOUS_BURST

    # The same address's own budget is untouched: a visitor there still has all of it.
    r = Client(lp_app, stage.users.tenant).get("/courses", remote_addr=nat)
    assert r.status_code == 200
    assert r.headers["ratelimit"].startswith(f'"anonymous";r={ANONYMOUS_BURST - 1};')


def test_one_user_hammering_is_still_refused(stage, lp_app, limits_on):
    data = mp4_bytes(60, payload=5_000)
    assert upload(stage.t, stage.course_id, stage.module_ids[0], data).status_code == 201
    url = stage.s.get(stage.path()).json["url"]
    limits_on()
    nat = fresh_address()
    answers = [fetch(lp_app, url, nat, {"Range": "bytes=0-99"}) for _ in range(USER_BURST + 5)]
    statuses = [r.status_code for r in answers]
    assert statuses[:USER_BURST] == [206] * USER_BURST
    assert set(statuses[USER_BURST:]) == {429}
    refused = answers[USER_BURST]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json["code"] == "rate_limited" and refused.json["policy"] == "user"
    assert int(refused.headers["retry-after"]) >= 1
    # Another student's URL, from the same address, still plays: the budget was that user's.
    other = stage.client.as_(stage.users.make("student").token)
    assert other.post(f"/courses/{stage.course_id}/enroll").status_code == 201
    r = fetch(lp_app, other.get(stage.path()).json["url"], nat, {"Range": "bytes=0-99"})
    assert r.status_code == 206


def test_bad_signatures_pay_from_the_address(stage, lp_app, lp_runtime, lp_tenant, limits_on):
    assert upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 201
    url = stage.s.get(stage.path()).json["url"]
    limits_on()
    parsed = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    media_id = int(parsed.path.rsplit("/", 1)[1])
    past = int(time.time()) - 1
    expired = signing.signature(lp_runtime.secret_key, lp_tenant.id, media_id, past, int(q["u"]))
    bad = [
        {**q, "sig": "0" * 64},  # forged
        {**q, "u": str(int(q["u"]) + 1)},  # altered: someone else's budget, not theirs
        {**q, "exp": str(int(q["exp"]) + 3600)},  # altered expiry
        {**q, "exp": str(past), "sig": expired},  # correctly signed, expired
        {**q, "u": "x"},
    ]
    addr = fresh_address()
    statuses = []
    for n in range(ANONYMOUS_BURST + 3):
        r = fetch(lp_app, f"{parsed.path}?{urlencode(bad[n % len(bad)])}", addr)
        statuses.append(r.status_code)
        if r.status_code == 403:
            assert '"anonymous"' in r.headers["ratelimit-policy"]
    assert statuses[:ANONYMOUS_BURST] == [403] * ANONYMOUS_BURST
    assert set(statuses[ANONYMOUS_BURST:]) == {429}
    assert r.json["policy"] == "anonymous"
    # The student's own, valid URL from another address is unaffected.
    assert fetch(lp_app, url, fresh_address(), {"Range": "bytes=0-9"}).status_code == 206
