"""`learnplat users|audit|keys ...` and `tenants create` with its first admin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from learnplat_identity.models import User

from learnplat import db
from learnplat.tenancy import tenant_context


def _users(runtime, tenant):
    with db.connection(), tenant_context(tenant), db.transaction():
        return {u.email: u for u in User.select()}


def test_tenants_create_provisions_an_admin_who_can_log_in(lp_cli, lp_client, lp_runtime):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    r = lp_cli("tenants", "create", slug, "--name", "CLI School", "--admin-email",
               "Head@School.example", "--admin-password", "a strong admin passphrase")
    assert r.exit_code == 0, r.stderr
    tenant = lp_runtime.tenants.get_by_slug(slug)
    c = lp_client.as_(tenant=tenant)
    pair = c.post("/auth/login", json={"email": "head@school.example",
                                       "password": "a strong admin passphrase"})
    assert pair.status_code == 200, pair.text
    me = c.as_(pair.json["access_token"], tenant=tenant)
    assert me.get("/auth/profile").json["role"] == "admin"
    assert me.get("/users").status_code == 200
    # A weak admin password is refused and no tenant is left behind.
    other = f"cli-{uuid.uuid4().hex[:8]}"
    r = lp_cli("tenants", "create", other, "--name", "X", "--admin-email", "a@b.example",
               "--admin-password", "short")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "password" in r.stderr
    assert lp_runtime.tenants.get_by_slug(other) is None


def test_users_create_set_role_deactivate(lp_cli, lp_client, lp_runtime):
    slug = lp_client.tenant.slug
    r = lp_cli("users", "create", "--tenant", slug, "--email", "T@Example.org",
               "--password", "teacher passphrase", "--role", "instructor")
    assert r.exit_code == 0, r.stderr
    assert _users(lp_runtime, lp_client.tenant)["t@example.org"].role == "instructor"
    pair = lp_client.post("/auth/login", json={"email": "t@example.org",
                                               "password": "teacher passphrase"}).json
    r = lp_cli("users", "set-role", "--tenant", slug, "t@example.org", "student")
    assert r.exit_code == 0 and "student" in r.stdout
    assert lp_client.as_(pair["access_token"]).get("/auth/profile").status_code == 401
    # The help says what happens: tokens stop at once; the next one carries the new role.
    help_text = " ".join(lp_cli("users", "set-role", "--help").stdout.split())
    assert "next request" not in help_text and "stop working at once" in help_text
    r = lp_client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    assert lp_client.as_(r.json["access_token"]).get("/auth/profile").json["role"] == "student"
    r = lp_cli("users", "deactivate", "--tenant", slug, "t@example.org")
    assert r.exit_code == 0, r.stderr
    assert not _users(lp_runtime, lp_client.tenant)["t@example.org"].active
    r = lp_cli("users", "list", "--tenant", slug, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["active"] is False


@pytest.mark.parametrize("args,needle", [
    (("users", "create", "--tenant", "no-such-school", "--email", "a@b.example",
      "--password", "long enough pass"), "no-such-school"),
    (("users", "create", "--tenant", "{slug}", "--email", "dup@example.org",
      "--password", "long enough pass"), "exists"),
    (("users", "create", "--tenant", "{slug}", "--email", "x@example.org",
      "--password", "short"), "password"),
    (("users", "set-role", "--tenant", "{slug}", "nobody@example.org", "admin"), "nobody"),
    (("users", "deactivate", "--tenant", "{slug}", "nobody@example.org"), "nobody"),
    (("users", "unlock", "--tenant", "{slug}", "nobody@example.org"), "nobody"),
    (("keys", "rotate", "--tenant", "no-such-school"), "no-such-school"),
    (("audit", "list", "--tenant", "no-such-school"), "no-such-school"),
])
def test_cli_errors_are_one_line(lp_cli, lp_client, lp_users, args, needle):
    lp_users.make("student", email="dup@example.org")
    r = lp_cli(*[a.replace("{slug}", lp_client.tenant.slug) for a in args])
    assert r.exit_code == 1, r.stdout
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert needle in r.stderr


def test_users_set_role_usage_error(lp_cli, lp_client):
    r = lp_cli("users", "set-role", "--tenant", lp_client.tenant.slug, "a@b.example", "king")
    assert r.exit_code == 2 and "king" in r.stderr


CSV_MIXED = """email,name,role,password
ok1@example.org,Ok One,student,
ok2@example.org,Ok Two,INSTRUCTOR,a good long passphrase
not-an-email,Bad,student
dup@example.org,Dup,student
ok1@example.org,Again,student
bad-role@example.org,Bad,king
weak@example.org,Weak,student,short
too,many,columns,here,x
"""


def test_import_is_all_or_nothing_by_default(lp_cli, lp_client, lp_users, lp_runtime, tmp_path):
    lp_users.make("student", email="dup@example.org")
    path = tmp_path / "users.csv"
    path.write_text(CSV_MIXED)
    before = set(_users(lp_runtime, lp_client.tenant))
    r = lp_cli("users", "import", "--tenant", lp_client.tenant.slug, str(path))
    assert r.exit_code == 1
    rejected = {int(line.split(":")[1]): line for line in r.stderr.splitlines()
                if ": rejected: " in line}
    assert sorted(rejected) == [4, 5, 6, 7, 8, 9]
    assert "already has an account" in rejected[5] and "repeats line 2" in rejected[6]
    assert "king" in rejected[7] and "password" in rejected[8] and "columns" in rejected[9]
    assert "nothing was imported" in r.stderr
    assert set(_users(lp_runtime, lp_client.tenant)) == before


def test_import_valid_only_reports_exactly_what_was_imported(lp_cli, lp_client, lp_users,
                                                             lp_runtime, tmp_path):
    lp_users.make("student", email="dup@example.org")
    path = tmp_path / "users.csv"
    path.write_text(CSV_MIXED)
    r = lp_cli("users", "import", "--tenant", lp_client.tenant.slug, str(path), "--valid-only")
    assert r.exit_code == 1  # some rows were rejected
    created = [line for line in r.stdout.splitlines() if ": created " in line]
    assert [c.split(":")[1] for c in created] == ["2", "3"]
    assert "imported 2 user(s); 6 row(s) rejected" in r.stdout
    users = _users(lp_runtime, lp_client.tenant)
    assert users["ok2@example.org"].role == "instructor"
    assert users["ok1@example.org"].password_hash is None  # no password: OAuth sign-in only
    ok = lp_client.post("/auth/login", json={"email": "ok2@example.org",
                                             "password": "a good long passphrase"})
    assert ok.status_code == 200


def test_import_clean_file_and_bad_files(lp_cli, lp_client, lp_runtime, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("a1@example.org,A One,student\na2@example.org,A Two,admin,"
                    "admin passphrase!\n")
    r = lp_cli("users", "import", "--tenant", lp_client.tenant.slug, str(good))
    assert r.exit_code == 0, r.stderr
    assert "imported 2 user(s); 0 row(s) rejected" in r.stdout
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    empty = tmp_path / "empty.csv"
    empty.write_text("email,name,role\n")
    for path in (binary, empty, tmp_path / "missing.csv"):
        r = lp_cli("users", "import", "--tenant", lp_client.tenant.slug, str(path))
        assert r.exit_code != 0 and r.stderr.count("\n") == 1, r.stderr


def test_audit_list(lp_cli, lp_client, lp_users):
    u = lp_users.make("student")
    lp_client.post("/auth/login", json={"email": u.email, "password": "wrong password!"})
    r = lp_cli("audit", "list", "--tenant", lp_client.tenant.slug, "--json")
    assert r.exit_code == 0, r.stderr
    entries = json.loads(r.stdout)
    assert entries[0]["action"] == "login.failed" and entries[0]["subject_id"] == u.id
    r = lp_cli("audit", "list", "--tenant", lp_client.tenant.slug, "--action", "user.created")
    assert r.exit_code == 0 and "user.created" in r.stdout and "login.failed" not in r.stdout


def test_real_command_line(lp_database, lp_client, tmp_path):
    """The installed `learnplat` script: --help, and one line with exit 1 on an error."""
    exe = os.path.join(os.path.dirname(sys.executable), "learnplat")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update(LEARNPLAT_DATABASE_URL=lp_database.url, LEARNPLAT_REDIS_URL=lp_database.redis_url,
               LEARNPLAT_APP_SECRET_KEY="test-secret-key-not-for-production",
               LEARNPLAT_APP_VAR_DIR=str(tmp_path / "var"))
    r = subprocess.run([exe, "users", "--help"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "import" in r.stdout and "set-role" in r.stdout
    r = subprocess.run([exe, "users", "set-role", "--tenant", lp_client.tenant.slug,
                        "nobody@example.org", "admin"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("error:"), \
        r.stderr


# Addresses that every door (registration, users create, users import, tenants create) must
# treat alike: accepted everywhere, or refused everywhere.
EMAILS = ["x@y.z", "pupil@school.example", "garbage", "a@school.local", "a@localhost",
          "a@b.invalid", "a@@b.example", "Ann <ann@school.example>", "a@" + "b" * 250 + ".org",
          "a b@school.example"]


@pytest.mark.parametrize("email", EMAILS)
def test_one_email_rule_wherever_an_address_enters(email, lp_cli, lp_client, lp_runtime,
                                                   tmp_path):
    password = "a long passphrase"
    api = lp_client.post("/auth/register", json={"email": email, "password": password,
                                                 "name": "N"})
    assert api.status_code in (201, 422), api.text
    accepted = api.status_code == 201
    if not accepted:
        assert api.json["errors"][0]["field"] == "email"
    other = lp_client.as_(tenant=_fresh(lp_runtime))
    cli = lp_cli("users", "create", "--tenant", other.tenant.slug, "--email", email,
                 "--password", password)
    assert (cli.exit_code == 0) is accepted, (cli.stdout, cli.stderr)
    if not accepted:
        assert cli.stderr.startswith("error: invalid email") and cli.stderr.count("\n") == 1
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    cli = lp_cli("tenants", "create", slug, "--name", "S", "--admin-email", email,
                 "--admin-password", password)
    assert (cli.exit_code == 0) is accepted, (cli.stdout, cli.stderr)
    assert (lp_runtime.tenants.get_by_slug(slug) is not None) is accepted
    csv = tmp_path / "users.csv"
    csv.write_text(f'"{email}",Name,student,{password}\n')
    third = _fresh(lp_runtime)
    cli = lp_cli("users", "import", "--tenant", third.slug, str(csv))
    assert (cli.exit_code == 0) is accepted, (cli.stdout, cli.stderr)


def _fresh(runtime):
    from learnplat.testing import make_tenant

    return make_tenant(runtime)


def test_one_password_rule_wherever_a_password_enters(lp_cli, lp_client, lp_runtime):
    """The policy is the same at every door, and surrounding spaces are never part of a
    password: a password made at the CLI logs in through the API as typed."""
    slug = lp_client.tenant.slug
    for bad, rule in (("short", "at least"), ("x" * 300, "at most"),
                      ("alice.smith rules!", "email")):
        cli = lp_cli("users", "create", "--tenant", slug, "--email", "alice.smith@example.org",
                     "--password", bad)
        assert cli.exit_code == 1 and "password" in cli.stderr and rule in cli.stderr, bad
        api = lp_client.post("/auth/register", json={
            "email": "alice.smith@example.org", "password": bad, "name": "A"})
        assert api.status_code == 422 and api.json["errors"][0]["field"] == "password", bad
    cli = lp_cli("users", "create", "--tenant", slug, "--email", "spaces@example.org",
                 "--password", "  padded passphrase  ")
    assert cli.exit_code == 0, cli.stderr
    for typed in ("padded passphrase", "  padded passphrase  "):
        r = lp_client.post("/auth/login", json={"email": "spaces@example.org",
                                                "password": typed})
        assert r.status_code == 200, (typed, r.text)
    # Ten characters of which two are spaces are eight: too short, at every door.
    cli = lp_cli("users", "create", "--tenant", slug, "--email", "pad@example.org",
                 "--password", " 12345678 ")
    assert cli.exit_code == 1 and "at least" in cli.stderr
    api = lp_client.post("/auth/register", json={
        "email": "pad@example.org", "password": " 12345678 ", "name": "P"})
    assert api.status_code == 422
