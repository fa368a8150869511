"""A school behind one address: a class registers and logs in at once with the default limits,
while password guessing on one account and credential stuffing across many accounts from that
address are still stopped. And the address itself: forwarded headers count only through
trusted proxies, for the limits and the audit log alike."""

from __future__ import annotations

import copy
import uuid

import pytest
from argon2 import PasswordHasher
from learnplat_identity import passwords
from learnplat_identity.services import IdentitySettings

from learnplat.http.app import create_app
from learnplat.testing import Client

SCHOOL = "198.51.100.20"  # the school's one public (NAT) address
HOME = "203.0.113.50"  # somewhere else
CLASS_SIZE = 40


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """The same code path with a cheap hash: these tests make and check hundreds of passwords."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    dummy = cheap.hash("learnplat-timing-equaliser")
    monkeypatch.setattr(passwords, "dummy_hash", lambda: dummy)


@pytest.fixture
def defaults(lp_runtime):
    """These tests are about the shipped defaults: make sure they are what runs."""
    limits = lp_runtime.plugin_settings["identity"]
    assert limits == IdentitySettings()
    return limits


def login(client, email, password, ip=SCHOOL, **headers):
    return client.post("/auth/login", json={"email": email, "password": password},
                       remote_addr=ip, headers=headers or None)


def assert_429(r):
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"


def test_a_class_registers_and_logs_in_within_a_minute(lp_client, defaults):
    students = [(f"pupil{i}-{uuid.uuid4().hex[:6]}@school.example", f"my secret phrase {i}")
                for i in range(CLASS_SIZE)]
    for email, password in students:
        r = lp_client.post("/auth/register", remote_addr=SCHOOL,
                           json={"email": email, "password": password, "name": "Pupil"})
        assert r.status_code == 201, r.text
    # Some mistype first, as children do; everyone gets in.
    for i, (email, password) in enumerate(students):
        if i % 4 == 0:
            assert login(lp_client, email, password + "x").status_code == 401
        r = login(lp_client, email, password)
        assert r.status_code == 200, (i, r.text)


def test_a_teacher_imports_a_class_and_everyone_logs_in_at_once(lp_client, lp_cli, tmp_path,
                                                                 defaults):
    rows = [(f"p{i}-{uuid.uuid4().hex[:6]}@school.example", f"starter phrase {i:02d}")
            for i in range(CLASS_SIZE)]
    csv = tmp_path / "class.csv"
    csv.write_text("email,name,role,password\n"
                   + "".join(f"{e},Pupil {i},student,{p}\n" for i, (e, p) in enumerate(rows)))
    r = lp_cli("users", "import", "--tenant", lp_client.tenant.slug, str(csv))
    assert r.exit_code == 0, r.stderr
    for i, (email, password) in enumerate(rows):
        if i % 5 == 0:
            assert login(lp_client, email, "wrong " + password).status_code == 401
        assert login(lp_client, email, password).status_code == 200, i


def test_guessing_one_password_is_stopped_without_locking_out_the_school(lp_client, lp_users,
                                                                         defaults):
    victim, classmate = lp_users.make("student"), lp_users.make("student")
    codes = [login(lp_client, victim.email, f"guess number {i}").status_code
             for i in range(defaults.lock_after_failures)]
    assert codes == [401] * defaults.lock_after_failures
    # The account is locked: even the right password waits; guessing on is pointless.
    assert_429(login(lp_client, victim.email, victim.password))
    for i in range(20):
        assert_429(login(lp_client, victim.email, f"more guesses {i}"))
    # The rest of the school, behind the same address, is not affected.
    assert login(lp_client, classmate.email, classmate.password).status_code == 200


def test_guessing_one_password_from_many_addresses_is_stopped(lp_client, lp_users, defaults):
    victim = lp_users.make("student")
    for i in range(defaults.lock_after_failures):
        login(lp_client, victim.email, f"guess {i}", ip=f"192.0.2.{i + 1}")
    assert_429(login(lp_client, victim.email, victim.password, ip="192.0.2.200"))


def test_credential_stuffing_from_one_address_is_stopped(lp_client, lp_users, defaults):
    """A few passwords on each of many accounts: no account sees enough failures to lock, so
    the address's failed-login budget is what stops it."""
    budget = defaults.login_failures_per_ip
    real = [lp_users.make("student") for _ in range(3)]
    emails = [u.email for u in real] + [f"leaked{i}@school.example" for i in range(budget)]
    codes = []
    for i in range(budget + 20):
        codes.append(login(lp_client, emails[i % len(emails)], f"leaked password {i}")
                     .status_code)
    assert codes[:budget] == [401] * budget
    assert set(codes[budget:]) == {429}
    # From that address even a right password now waits (the block is not an oracle)...
    r = login(lp_client, real[0].email, real[0].password)
    assert_429(r)
    assert int(r.headers["retry-after"]) <= defaults.login_failure_window
    # ...while the same accounts work from elsewhere: nobody was locked out by the run.
    assert login(lp_client, real[0].email, real[0].password, ip=HOME).status_code == 200


def test_stuffing_spread_over_an_ipv6_network_counts_as_one(lp_client, defaults):
    """An IPv6 client holds a /64: rotating the low bits does not buy a new budget."""
    budget = defaults.login_failures_per_ip
    codes = [login(lp_client, f"x{i}@school.example", "some password!",
                   ip=f"2001:db8:5:6::{i + 1:x}").status_code for i in range(budget + 1)]
    assert codes[:budget] == [401] * budget and codes[-1] == 429
    assert login(lp_client, "y@school.example", "some password!",
                 ip="2001:db8:5:7::1").status_code == 401


def test_address_limits_count_per_address(lp_client, lp_runtime, monkeypatch):
    """The mechanism, with small numbers: each limit is per (resolved) address and per school."""
    small = IdentitySettings(login_per_ip=3, register_per_ip=2, refresh_per_ip=2)
    monkeypatch.setitem(lp_runtime.plugin_settings, "identity", small)
    for i in range(3):
        assert login(lp_client, f"n{i}@example.org", "wrong password!").status_code == 401
    assert_429(login(lp_client, "fresh@example.org", "wrong password!"))
    assert login(lp_client, "fresh@example.org", "wrong password!", ip=HOME).status_code == 401
    for i in range(2):
        r = lp_client.post("/auth/register", remote_addr=SCHOOL, json={
            "email": f"r{i}@example.org", "password": "a long passphrase", "name": "R"})
        assert r.status_code == 201, r.text
    assert_429(lp_client.post("/auth/register", remote_addr=SCHOOL, json={
        "email": "late@example.org", "password": "a long passphrase", "name": "R"}))
    for i in range(2):
        lp_client.post("/auth/refresh", remote_addr=SCHOOL,
                       json={"refresh_token": f"not-a-real-token-{i}"})
    assert_429(lp_client.post("/auth/refresh", remote_addr=SCHOOL,
                              json={"refresh_token": "not-a-real-token"}))


# -- the address, through proxies ----------------------------------------------------------------


PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(lp_runtime, lp_tenant):
    """The app as deployed behind a reverse proxy at 10.0.0.2 (server.trusted_proxies)."""
    rt = copy.copy(lp_runtime)
    server = lp_runtime.settings.server.model_copy(update={"trusted_proxies": (PROXY,)})
    rt.settings = lp_runtime.settings.model_copy(update={"server": server})
    return Client(create_app(rt), lp_tenant)


def test_behind_a_proxy_each_client_has_its_own_budget(behind_proxy, lp_client, lp_runtime,
                                                       monkeypatch):
    monkeypatch.setitem(lp_runtime.plugin_settings, "identity",
                        IdentitySettings(login_per_ip=3))
    c = behind_proxy
    # Every request comes from the proxy, each client's address in X-Forwarded-For.
    for n in range(10):
        r = login(c, f"someone{n}@example.org", "wrong password!", ip=PROXY,
                  **{"X-Forwarded-For": f"192.0.2.{n + 1}"})
        assert r.status_code == 401, r.text
    for n in range(3):
        r = login(c, f"other{n}@example.org", "wrong password!", ip=PROXY,
                  **{"X-Forwarded-For": "192.0.2.77"})
        assert r.status_code == 401, r.text
    assert_429(login(c, "someone-else@example.org", "wrong password!", ip=PROXY,
                     **{"X-Forwarded-For": "192.0.2.77"}))
    # A client that forges the header behind our proxy only adds to the left of its address.
    assert_429(login(c, "someone-else@example.org", "wrong password!", ip=PROXY,
                     **{"X-Forwarded-For": "192.0.2.200, 192.0.2.77"}))


def test_a_forged_header_from_an_untrusted_client_changes_nothing(behind_proxy, lp_client,
                                                                  lp_runtime, monkeypatch):
    monkeypatch.setitem(lp_runtime.plugin_settings, "identity",
                        IdentitySettings(login_per_ip=3))
    for app in (lp_client, behind_proxy):  # no proxy trusted, and a proxy that is not the peer
        peer = f"192.0.2.{100 + (app is behind_proxy)}"
        for n in range(3):
            r = login(app, f"a{n}@example.org", "wrong password!", ip=peer,
                      **{"X-Forwarded-For": f"203.0.113.{n}", "Forwarded": f"for=203.0.113.{n}"})
            assert r.status_code == 401, r.text
        assert_429(login(app, "b@example.org", "wrong password!", ip=peer,
                         **{"X-Forwarded-For": "203.0.113.99"}))


def test_the_audit_log_records_the_client_not_the_proxy(behind_proxy, lp_users):
    admin, user = lp_users.make("admin"), lp_users.make("student")
    c = behind_proxy
    assert login(c, user.email, "wrong password!", ip=PROXY,
                 **{"X-Forwarded-For": "1.2.3.4, 192.0.2.33"}).status_code == 401
    assert login(c, user.email, user.password, ip=PROXY,
                 **{"X-Forwarded-For": "[2001:db8::33]:5000"}).status_code == 200
    assert login(c, user.email, user.password, ip="192.0.2.66",
                 **{"X-Forwarded-For": "9.9.9.9"}).status_code == 200
    items = c.as_(admin.token).get("/audit", params={"subject_id": user.id}).json["items"]
    seen = [(e["action"], e["ip"]) for e in items if e["action"].startswith("login")]
    assert seen == [("login.succeeded", "192.0.2.66"), ("login.succeeded", "2001:db8::33"),
                    ("login.failed", "192.0.2.33")]


def test_garbage_forwarded_headers_are_served(behind_proxy, lp_users):
    user = lp_users.make("student")
    for value in ("", ",,,", "garbage", "1.2.3.4, ;;;", "[::1", "x" * 4000,
                  ", ".join(["10.0.0.2"] * 200), "fe80::1%eth0, 10.0.0.2", "\u00e9\u00e8"):
        r = login(behind_proxy, user.email, user.password, ip=PROXY,
                  **{"X-Forwarded-For": value})
        assert r.status_code == 200, (value[:40], r.status_code, r.text)
