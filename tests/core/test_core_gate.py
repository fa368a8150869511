"""The gate (learnplat.gate): one way in for every transport. In process: the school, the
credentials through the `authenticate` hook, the budgets charged once and enforced first, the
unit of work. Over real servers: a REST request and a WebSocket handshake are refused alike
(bad token, disabled school, plugin switched off, spent budget) and draw from one budget."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

import pytest
import requests

from learnplat import db, hookimpl
from learnplat.auth import Principal
from learnplat.errors import NotFound, RateLimited, Unauthorized
from learnplat.gate import API, FREE, Arrival, Credentials, Gate, Toll
from learnplat.ratelimit import Limiter
from learnplat.settings import LimitSettings
from learnplat.testing import make_tenant, serve_with_gunicorn

_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address no other test in this process has used (budgets outlive a test)."""
    return f"198.18.{next(_addresses) % 250}.{uuid.uuid4().int % 250 + 1}"


@pytest.fixture
def gate(lp_runtime):
    return Gate(lp_runtime)


@pytest.fixture
def limits_on(lp_runtime, monkeypatch):
    settings = LimitSettings(enabled=True, user_burst=3, user_rate=0.01, heartbeat_burst=3,
                             heartbeat_rate=0.01, tenant_burst=1000, tenant_rate=100,
                             anonymous_burst=2, anonymous_rate=0.01)
    monkeypatch.setattr(lp_runtime, "limits", Limiter(settings, lp_runtime.kv))
    return settings


def arrive(tenant=None, token=None, addr=None, **kw) -> Arrival:
    return Arrival(Credentials.bearer_token(token), addr or fresh_address(), kw.get("host"),
                   tenant.slug if tenant is not None else kw.get("slug"))


def policies(passage) -> list[str]:
    return [d.policy for d in passage.decisions or ()]


# -- credentials ------------------------------------------------------------------------------


def test_credentials_read_a_bearer_token_whatever_carried_it():
    assert Credentials("Bearer  abc ").bearer == "abc"
    assert Credentials("bearer abc").scheme == "bearer"
    assert Credentials.bearer_token("abc") == Credentials("Bearer abc")
    assert Credentials("Basic dTpw").bearer is None and Credentials("Bearer ").bearer is None
    assert not Credentials() and not Credentials.bearer_token("") \
        and not Credentials.bearer_token(None)
    assert Credentials("Basic dTpw") and Credentials(cookies={"session": "x"})


# -- in process -------------------------------------------------------------------------------


def test_a_valid_token_is_admitted_inside_its_school_and_unit_of_work(gate, lp_tenant,
                                                                       lp_users, limits_on):
    student = lp_users.make("student")
    with gate.admit(arrive(lp_tenant, student.token), "identity") as passage:
        assert passage.tenant.id == lp_tenant.id
        assert passage.principal.user_id == student.id
        assert passage.principal.tenant_id == lp_tenant.id
        assert db.current_unit() is not None
        # Identity's reads and the charge were one round trip: the user's and school's budgets.
        assert policies(passage) == ["user", "tenant"]
        assert passage.decisions[0].remaining == limits_on.user_burst - 1
    assert db.current_unit() is None and db.leftovers() == []


def test_each_refusal_is_charged_to_the_address_and_leaves_nothing_open(gate, lp_runtime,
                                                                       lp_tenant, lp_users,
                                                                       limits_on):
    student = lp_users.make("student")
    off = make_tenant(lp_runtime, disabled_plugins=["notifications"])
    closed = make_tenant(lp_runtime, enabled=False)
    cases = [
        (arrive(slug="no-such-school", token=student.token), NotFound, ["anonymous"]),
        (arrive(closed, student.token), NotFound, ["anonymous"]),
        (arrive(off, student.token), NotFound, ["anonymous"]),
        (arrive(lp_tenant, "not-a-token"), Unauthorized, ["anonymous", "tenant"]),
        (Arrival(Credentials("Bearer "), fresh_address(), None, lp_tenant.slug), Unauthorized,
         ["anonymous", "tenant"]),
    ]
    for arrival, error, charged in cases:
        passage = gate.passage(arrival)
        with pytest.raises(error):
            passage.hold_connection()
            passage.find_tenant("notifications")
            passage.enter()
            passage.open_unit(write=False)
            passage.authenticate()
        assert policies(passage) == charged, arrival
        passage.close(False)
        assert db.current_unit() is None and db.leftovers() == []


def test_no_school_named_and_none_required_is_no_refusal(gate, limits_on):
    passage = gate.passage(arrive())
    assert passage.find_tenant(None, required=False) is None
    passage.charge_visitor()
    passage.enforce()
    assert policies(passage) == ["anonymous"]
    with pytest.raises(NotFound):  # but a school that is named must exist
        gate.passage(arrive(slug="nowhere")).find_tenant(None, required=False)


def test_a_spent_budget_wins_over_every_other_refusal(gate, lp_tenant, lp_users, limits_on):
    addr = fresh_address()
    for _ in range(limits_on.anonymous_burst):
        with pytest.raises(Unauthorized):
            with gate.admit(arrive(lp_tenant, "nope", addr), "identity"):
                pass
    for arrival in (arrive(lp_tenant, "nope", addr), arrive(slug="nowhere", addr=addr),
                    arrive(lp_tenant, None, addr)):
        with pytest.raises(RateLimited) as limited:
            with gate.admit(arrival, "identity"):
                pass
        assert limited.value.extra["policy"] == "anonymous"
        assert int(limited.value.headers["Retry-After"]) >= 1
    # A user pays from their own budget, whatever the address.
    student = lp_users.make("student")
    for _ in range(limits_on.user_burst):
        with gate.admit(arrive(lp_tenant, student.token, addr), "identity") as passage:
            assert passage.principal.user_id == student.id
    with pytest.raises(RateLimited) as limited:
        with gate.admit(arrive(lp_tenant, student.token), "identity"):
            pass
    assert limited.value.extra["policy"] == "user"


def test_a_free_toll_charges_nothing(gate, lp_tenant, lp_users, limits_on):
    student = lp_users.make("student")
    addr = fresh_address()
    for _ in range(limits_on.anonymous_burst + 2):
        with pytest.raises(Unauthorized):
            with gate.admit(arrive(lp_tenant, "nope", addr), "identity", toll=FREE):
                pass
    for _ in range(limits_on.user_burst + 2):
        with gate.admit(arrive(lp_tenant, student.token), "identity", toll=FREE) as passage:
            assert passage.decisions == []
    # The declared cost is what a charge takes.
    with gate.admit(arrive(lp_tenant, student.token), "identity",
                    toll=Toll(cost=2)) as passage:
        assert passage.decisions[0].remaining == limits_on.user_burst - 2
    assert API == Toll("api", 1, False)


def test_the_unit_of_work_commits_on_success_and_rolls_back_on_error(gate, lp_tenant,
                                                                     lp_users):
    from learnplat_identity.models import User

    student = lp_users.make("student")
    with gate.admit(arrive(lp_tenant, student.token), "identity", write=True):
        User.update(name="Committed").where(User.id == student.id).execute()
    with pytest.raises(ZeroDivisionError):
        with gate.admit(arrive(lp_tenant, student.token), "identity", write=True):
            User.update(name="Rolled back").where(User.id == student.id).execute()
            1 / 0  # noqa: B018
    with gate.admit(arrive(lp_tenant, student.token), "identity"):
        assert User.get_by_id(student.id).name == "Committed"
    assert db.leftovers() == []


class CookieSessions:
    """A plugin whose sessions live in a cookie (as an admin console's would)."""

    def __init__(self):
        self.seen: list[Any] = []

    @hookimpl(tryfirst=True)
    def authenticate(self, runtime: Any, credentials: Credentials, tenant: Any,
                     round_trip: Any) -> Principal | None:
        self.seen.append(credentials)
        session = credentials.cookies.get("console")
        if session is None:
            return None
        # Its reads go in the round trip that charges the caller, as identity's do.
        round_trip([f"console:{tenant.id}:{session}"], 42)
        return Principal(user_id=42, tenant_id=tenant.id, role="admin",
                         grants=runtime.registry.grants_for("admin"))


@pytest.fixture
def cookie_sessions(lp_runtime):
    plugin = CookieSessions()
    lp_runtime.pm.register(plugin, name="test-cookie-sessions")
    yield plugin
    lp_runtime.pm.unregister(plugin)


def test_the_hook_gets_credentials_not_a_request(gate, lp_tenant, limits_on, cookie_sessions):
    arrival = Arrival(Credentials(cookies={"console": "s1"}), fresh_address(), None,
                      lp_tenant.slug)
    with gate.admit(arrival, "identity") as passage:
        assert passage.principal.user_id == 42
        assert policies(passage) == ["user", "tenant"]  # charged once, in its round trip
    assert cookie_sessions.seen == [arrival.credentials]
    # Cookies no plugin claims leave a visitor (charged by address); an Authorization header
    # no plugin claims is a 401.
    stray = Arrival(Credentials(cookies={"_ga": "x"}), fresh_address(), None, lp_tenant.slug)
    with gate.admit(stray, "identity") as passage:
        assert passage.principal is None and policies(passage) == ["anonymous", "tenant"]
    with pytest.raises(Unauthorized):
        with gate.admit(Arrival(Credentials("Digest x"), fresh_address(), None,
                                lp_tenant.slug), "identity"):
            pass
    # Nothing presented: the hook is not called at all.
    cookie_sessions.seen.clear()
    with gate.admit(arrive(lp_tenant), "identity") as passage:
        assert passage.principal is None
    assert cookie_sessions.seen == []


def test_the_client_address_is_believed_only_from_trusted_proxies(lp_runtime, monkeypatch):
    from learnplat.client_address import parse_trusted

    gate = Gate(lp_runtime)
    asked = []

    def header(name):  # as a request's get_header reads one
        asked.append(name)
        return "203.0.113.9" if name.lower() == "x-forwarded-for" else None

    assert gate.client_address("192.0.2.1", header) == "192.0.2.1"
    assert asked == []  # no proxy trusted: the header is not even read
    monkeypatch.setattr(gate, "proxies", parse_trusted(["192.0.2.0/24"]))
    assert gate.client_address("192.0.2.1", header) == "203.0.113.9"
    assert gate.client_address("198.51.100.1", header) == "198.51.100.1"


# -- over real servers: REST and the WebSocket refuse alike -----------------------------------


def _socket(ws_url: str, query: str, addr: str) -> tuple[int, str] | dict[str, Any]:
    """Open the notifications socket; its first message, or (close code, reason)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(f"{ws_url}/notifications/ws?{query}", open_timeout=10,
                 additional_headers={"X-Forwarded-For": addr}) as ws:
        try:
            return json.loads(ws.recv(timeout=10))
        except ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason


def _rest(base: str, slug: str, token: str, addr: str) -> requests.Response:
    return requests.get(f"{base}/notifications", timeout=10,
                        headers={"X-Tenant": slug, "Authorization": f"Bearer {token}",
                                 "X-Forwarded-For": addr})


@pytest.mark.e2e
def test_rest_and_the_websocket_refuse_the_same_callers_from_one_budget(
        lp_runtime, lp_database, tmp_path, lp_users, lp_tenant):
    student = lp_users.make("student")
    closed = make_tenant(lp_runtime)
    closed_user = lp_users.make("student", tenant=closed)
    off = make_tenant(lp_runtime, disabled_plugins=["notifications"])
    off_user = lp_users.make("student", tenant=off)
    with db.connection():
        from learnplat.tenants import TenantSpec

        lp_runtime.tenants.apply(TenantSpec(slug=closed.slug, name=closed.name, enabled=False))
    env = {"LEARNPLAT_LIMITS_ENABLED": "true", "LEARNPLAT_LIMITS_ANONYMOUS_BURST": "3",
           "LEARNPLAT_LIMITS_ANONYMOUS_RATE": "0.01", "LEARNPLAT_LIMITS_USER_BURST": "3",
           "LEARNPLAT_LIMITS_USER_RATE": "0.01",
           # As if through a proxy on loopback: each case comes from an address of its own.
           "LEARNPLAT_SERVER_TRUSTED_PROXIES": "127.0.0.1"}
    seed = int(time.time() * 1000) % 200
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path, workers=1, env=env) as base:
        ws_url = base.replace("http://", "ws://")
        cases = {  # name: (school, token, REST status, problem code, socket close code)
            "bad token": (lp_tenant.slug, "not-a-token", 401, "not_authenticated"),
            "another school's token": (lp_tenant.slug, off_user.token, 401,
                                       "not_authenticated"),
            "disabled school": (closed.slug, closed_user.token, 404, "not_found"),
            "plugin switched off": (off.slug, off_user.token, 404, "not_found"),
            "unknown school": ("no-such-school", student.token, 404, "not_found"),
        }
        for n, (name, (slug, token, status, code)) in enumerate(cases.items()):
            addr = f"203.0.113.{seed + n + 1}"
            query = f"token={token}&tenant={slug}"
            # Three units of the address's budget: REST, socket, REST; then both are 429/1013.
            r = _rest(base, slug, token, addr)
            assert (r.status_code, r.json()["code"]) == (status, code), name
            assert r.headers["Content-Type"] == "application/problem+json"
            assert _socket(ws_url, query, addr)[0] == 1008, name
            assert _rest(base, slug, token, addr).status_code == status, name
            r = _rest(base, slug, token, addr)
            assert r.status_code == 429 and r.json()["policy"] == "anonymous", name
            assert int(r.headers["Retry-After"]) >= 1
            code_, reason = _socket(ws_url, query, addr)
            assert code_ == 1013 and "retry after" in reason, name
        # A user's budget is one for both: REST, socket, REST, then neither.
        addr = f"203.0.113.{seed + 50}"
        query = f"token={student.token}&tenant={lp_tenant.slug}"
        r = _rest(base, lp_tenant.slug, student.token, addr)
        assert r.status_code == 200 and r.headers["RateLimit"].startswith('"user";r=2;')
        assert _socket(ws_url, query, addr)["type"] == "ready"
        assert _rest(base, lp_tenant.slug, student.token, addr).status_code == 200
        r = _rest(base, lp_tenant.slug, student.token, addr)
        assert r.status_code == 429 and r.json()["policy"] == "user"
        code_, reason = _socket(ws_url, query, addr)
        assert code_ == 1013 and "retry after" in reason
