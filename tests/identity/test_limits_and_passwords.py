"""Rate limits (429 + Retry-After), lockout and unlock, the password policy, argon2 rehash."""

from __future__ import annotations

from argon2 import PasswordHasher
from learnplat_identity import passwords
from learnplat_identity.models import User

from learnplat import db
from learnplat.tenancy import tenant_context


def _login(client, email, password, ip="10.0.0.1"):
    return client.post("/auth/login", json={"email": email, "password": password},
                       remote_addr=ip)


def _assert_429(r):
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"


def test_login_limited_per_account_across_ips(lp_client, lp_runtime):
    limit = lp_runtime.plugin_settings["identity"].login_per_account
    codes = [_login(lp_client, "target@example.org", "wrong password!", ip=f"10.1.0.{i}")
             .status_code for i in range(limit + 1)]
    assert codes[-1] == 429 and set(codes[:-1]) <= {401, 429}


def test_register_limited_per_account(lp_client, lp_runtime):
    # Per address: tests/identity/test_school_networks.py (sized for a school network).
    limits = lp_runtime.plugin_settings["identity"]
    for i in range(limits.register_per_account):
        lp_client.post("/auth/register", remote_addr=f"10.3.0.{i}", json={
            "email": "same@example.org", "password": "a long passphrase", "name": "R"})
    _assert_429(lp_client.post("/auth/register", remote_addr="10.3.1.1", json={
        "email": "same@example.org", "password": "a long passphrase", "name": "R"}))


def test_refresh_limited_per_account(lp_client, lp_users, lp_runtime):
    u = lp_users.make("student")
    token = u.refresh_token
    for i in range(lp_runtime.plugin_settings["identity"].refresh_per_account):
        r = lp_client.post("/auth/refresh", remote_addr=f"10.5.{i // 200}.{i % 200}",
                           json={"refresh_token": token})
        assert r.status_code == 200, r.text
        token = r.json["refresh_token"]
    _assert_429(lp_client.post("/auth/refresh", remote_addr="10.6.0.1",
                               json={"refresh_token": token}))


def test_lockout_then_admin_unlocks(lp_client, lp_users, lp_runtime, lp_cli, admin):
    u = lp_users.make("student")
    n = lp_runtime.plugin_settings["identity"].lock_after_failures
    for i in range(n):
        assert _login(lp_client, u.email, "wrong password!", ip=f"10.7.0.{i}").status_code == 401
    # Locked: even the right password is refused for a while, with Retry-After.
    _assert_429(_login(lp_client, u.email, u.password, ip="10.7.1.1"))
    # An unknown email answers exactly the same way (no account enumeration).
    for i in range(n):
        _login(lp_client, "ghost@example.org", "wrong password!", ip=f"10.8.0.{i}")
    _assert_429(_login(lp_client, "ghost@example.org", "whatever pass", ip="10.8.1.1"))
    actions = [e["action"] for e in lp_client.as_(admin.token).get("/audit").json["items"]]
    assert "user.locked" in actions and "login.failed" in actions
    result = lp_cli("users", "unlock", "--tenant", lp_client.tenant.slug, u.email)
    assert result.exit_code == 0, result.stderr
    assert _login(lp_client, u.email, u.password, ip="10.7.1.2").status_code == 200
    # The endpoint does the same.
    for i in range(n):
        _login(lp_client, u.email, "wrong password!", ip=f"10.9.0.{i}")
    _assert_429(_login(lp_client, u.email, u.password, ip="10.9.1.1"))
    r = lp_client.as_(admin.token).post(f"/users/{u.id}/unlock")
    assert r.status_code == 200, r.text
    assert _login(lp_client, u.email, u.password, ip="10.9.1.2").status_code == 200
    student = lp_client.as_(u.token)
    assert student.post(f"/users/{u.id}/unlock").status_code == 403


def test_failed_login_takes_the_same_path_for_unknown_email(lp_client, lp_users, monkeypatch):
    u = lp_users.make("student")
    calls: list[str] = []

    class Spy:
        def __init__(self, real):
            self.real = real

        def verify(self, hash_, password):
            calls.append(hash_)
            return self.real.verify(hash_, password)

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(passwords, "_hasher", Spy(passwords._hasher))
    a = _login(lp_client, u.email, "wrong password!", ip="10.10.0.1")
    b = _login(lp_client, "nobody-here@example.org", "wrong password!", ip="10.10.0.2")
    assert a.status_code == b.status_code == 401
    assert a.json["detail"] == b.json["detail"] and a.json["code"] == b.json["code"]
    # One argon2 verification each: the unknown email is checked against a dummy hash.
    assert len(calls) == 2 and calls[1] == passwords.dummy_hash()


def test_password_policy_names_the_rule(lp_client):
    cases = {"short": "too_short", "x" * 300: "string_too_long",
             "alice.smith-2024": "contains_email", "ALICE.SMITH@example.org": "contains_email"}
    for password, rule in cases.items():
        r = lp_client.post("/auth/register", json={
            "email": "alice.smith@example.org", "password": password, "name": "Alice"})
        assert r.status_code == 422, password
        err = r.json["errors"][0]
        assert err["field"] == "password" and err["type"] == rule, (password, err)
        assert err["message"]


def test_argon2_rehash_on_parameter_change(lp_runtime, lp_client, lp_users):
    u = lp_users.make("student")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(u.password)
    with db.connection(), tenant_context(lp_client.tenant), db.transaction():
        User.update(password_hash=weak).where(User.id == u.id).execute()
    assert _login(lp_client, u.email, u.password).status_code == 200
    with db.connection(), tenant_context(lp_client.tenant), db.transaction():
        stored = User.get_by_id(u.id).password_hash
    assert stored != weak and not passwords._hasher.check_needs_rehash(stored)
    assert _login(lp_client, u.email, u.password).status_code == 200


def test_the_dummy_hash_costs_what_a_real_one_costs(monkeypatch):
    """The unknown-email check verifies a stored constant, made with the hasher's parameters
    (no hashing at start-up); with other parameters in force it is made with them instead."""
    from argon2 import extract_parameters

    assert passwords.dummy_hash() == passwords._DUMMY
    assert extract_parameters(passwords._DUMMY) == extract_parameters(
        passwords._hasher.hash("x"))
    cheaper = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheaper)
    passwords.dummy_hash.cache_clear()
    try:
        made = passwords.dummy_hash()
        assert made != passwords._DUMMY
        assert extract_parameters(made) == extract_parameters(cheaper.hash("x"))
    finally:
        passwords.dummy_hash.cache_clear()
