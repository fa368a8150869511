"""`learnplat backup`: a school backed up by the real command, restored into a fresh database by
the real command, logs in and reads the same; and a backup that would be empty fails instead.

Issue 34: `pg_dump` as the application's role fails, and `pg_dump --enable-row-security` exits 0
with every school's table empty, because every tenant table has a forced row-level security
policy. The backup must run as a role that bypasses it, and must refuse to call anything else a
backup. On PostgreSQL the commands run as the suite's RLS-bound role `learnplat_test_app` and a
backup role made by `learnplat backup setup-role`.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import fasteners
import pytest
from corehelpers import fresh_database

from learnplat import db
from learnplat.backup import (
    BackupError,
    _check_secret,
    check_counts,
    count_pg_dump,
    secret_fingerprint,
    verify_archive,
)
from learnplat.http.app import create_app
from learnplat.migrate import migrate
from learnplat.runtime import Runtime, create_runtime
from learnplat.tenancy import TenantInfo
from learnplat.testing import Client, backend, forget_redis_keys, use_runtime
from learnplat.testing import test_settings as settings_for

LEARNPLAT = Path(sys.executable).with_name("learnplat")  # the console script pip installed
BACKUP_ROLE = "learnplat_test_backup"
STUDENT_PASSWORD = "a student's own passphrase"


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


def multipart(data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "lpbackupboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"cover.png\"\r\nContent-Type: image/png\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), (r.status_code, r.text[:500])
    return r.json


def with_role(url: str, role: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(netloc=f"{role}@{parsed.hostname}:{parsed.port or 5432}"))


def cli_env(home: Path, runtime: Runtime, database_url: str, **extra: str) -> dict[str, str]:
    """A `learnplat` process's environment: a fresh home, and only what it is told."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEARNPLAT_", "XDG_", "PYTHON"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), LEARNPLAT_HOME=str(home), LEARNPLAT_DATABASE_URL=database_url,
               LEARNPLAT_APP_SECRET_KEY=runtime.settings.app.secret_key,
               LEARNPLAT_REDIS_URL=runtime.settings.redis.url, **extra)
    return env


def learnplat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LEARNPLAT), *args], env=env, cwd=env["LEARNPLAT_HOME"],
                          capture_output=True, text=True, timeout=180)


@functools.cache
def setup_backup_role() -> None:
    """The backup role, made by the real command once per test process. Roles are shared by
    the whole server, so parallel test processes take turns (ALTER ROLE and GRANT on one role
    at once fail with "tuple concurrently updated")."""
    admin = os.environ["LEARNPLAT_TEST_DATABASE_URL"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    lock = Path(tempfile.gettempdir()) / "learnplat-test-backup-role.lock"
    with fasteners.InterProcessLock(str(lock)):
        r = subprocess.run([str(LEARNPLAT), "backup", "setup-role", "--role", BACKUP_ROLE,
                            "--admin-url", admin, "--no-password"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"role {BACKUP_ROLE} (LOGIN BYPASSRLS" in r.stdout, r.stderr


def backup_role_url(database_url: str) -> str:
    setup_backup_role()
    return with_role(database_url, BACKUP_ROLE)


def settle(runtime: Runtime) -> None:
    for _ in range(10):
        if not runtime.events.dispatch_pending():
            return


def populate(runtime: Runtime, client: Client, lp_users: Any) -> dict[str, Any]:
    """A school as its users make it through the API: a registered student, a published
    course with modules and a cover image, an enrollment and progress."""
    admin = client.as_(lp_users.make("admin").token)
    teacher = client.as_(lp_users.make("instructor").token)
    email = f"pupil-{uuid.uuid4().hex[:6]}@example.org"
    ok(client.post("/auth/register", json={"email": email, "password": STUDENT_PASSWORD,
                                           "name": "Pupil"}))
    student = client.as_(ok(client.post("/auth/login", json={
        "email": email, "password": STUDENT_PASSWORD}))["access_token"])
    cid = ok(teacher.post("/courses", json={"title": "Backups 101",
                                            "description": "What a restore must show"}))["id"]
    mids = [ok(teacher.post(f"/courses/{cid}/modules", json={"title": f"Part {n}"}))["id"]
            for n in (1, 2)]
    body, headers = multipart(png())
    ok(teacher.post(f"/courses/{cid}/image", body=body, headers=headers))
    ok(teacher.post(f"/courses/{cid}/submit"))
    ok(admin.post(f"/courses/{cid}/approve"))
    ok(student.post(f"/courses/{cid}/enroll"))
    ok(student.post(f"/progress/{cid}", json={"module_id": mids[0], "completed": True}))
    settle(runtime)
    return {"email": email, "course": cid, "admin": admin}


def reads(student: Client, admin: Client, course: int) -> dict[str, Any]:
    """What the school's users read back, as JSON; the cover image's bytes."""
    out = {path: ok(student.get(path)) for path in (
        "/auth/profile", f"/courses/{course}", "/courses/enrollments", f"/progress/{course}")}
    out.update({path: ok(admin.get(path)) for path in (
        "/users", f"/courses/{course}/students", f"/progress/{course}/students")})
    r = student.get(f"/courses/{course}/image")
    out["image"] = r.status_code, r.content
    return out


@pytest.mark.e2e
def test_a_school_backed_up_and_restored_into_a_fresh_database_logs_in_and_reads_the_same(
        lp_runtime: Runtime, lp_app: Any, lp_tenant: TenantInfo, lp_users: Any,
        tmp_path: Path) -> None:
    client = Client(lp_app, lp_tenant)
    school = populate(lp_runtime, client, lp_users)
    student_token = ok(client.post("/auth/login", json={
        "email": school["email"], "password": STUDENT_PASSWORD}))["access_token"]
    before = reads(client.as_(student_token), school["admin"], school["course"])
    assert before["image"][0] == 200 and before["image"][1][:4] == b"\x89PNG"

    source = lp_runtime.settings
    extra = {"LEARNPLAT_STORAGE_URL": source.storage.url,
             "LEARNPLAT_APP_VAR_DIR": str(source.var_path),
             "LEARNPLAT_QUEUE_SQLITE_PATH": str(source.path(source.queue.sqlite_path))}
    if backend() == "postgres":
        extra["LEARNPLAT_BACKUP_DATABASE_URL"] = backup_role_url(source.database.url)
    archive = tmp_path / "nightly.tar"
    r = learnplat(cli_env(tmp_path / "source-home", lp_runtime, source.database.url, **extra),
                  "backup", "create", "--output", str(archive))
    assert r.returncode == 0, r.stderr
    assert "every table's rows match the database" in r.stdout and "app.secret_key" in r.stdout
    assert archive.stat().st_mode & 0o077 == 0  # not readable by other users
    manifest = verify_archive(archive).manifest
    assert manifest["tables"]["learnplat_tenant"] >= 1 and manifest["migrations"]["core"]
    assert any(name.startswith("storage/") for name in manifest["members"])

    target = fresh_database(tmp_path / "restored-db", "restore")
    home = tmp_path / "restored"
    prefix = f"lptest-restored-{uuid.uuid4().hex[:8]}"
    restored: Runtime | None = None
    try:
        env = cli_env(home, lp_runtime, target.url, LEARNPLAT_REDIS_PREFIX=prefix,
                      LEARNPLAT_STORAGE_URL=f"file://{home / 'storage'}",
                      LEARNPLAT_APP_VAR_DIR=str(home / "var"))
        wrong = learnplat({**env, "LEARNPLAT_APP_SECRET_KEY": "another-secret-of-this-site"},
                          "backup", "restore", str(archive), "--into", target.url)
        assert wrong.returncode == 1 and "app.secret_key differs" in wrong.stderr, wrong.stderr
        # Restored after a rotation: the backup's secret is now the second old one.
        rotated = {**env, "LEARNPLAT_APP_SECRET_KEY": "the-new-secret-of-this-site",
                   "LEARNPLAT_APP_OLD_SECRET_KEYS":
                       f"an-older-secret-of-this-site,{env['LEARNPLAT_APP_SECRET_KEY']}"}
        r = learnplat(rotated, "backup", "restore", str(archive), "--into", target.url)
        assert r.returncode == 0, r.stderr
        assert "every table's rows match the backup" in r.stdout
        assert "app.old_secret_keys[1]" in r.stderr, r.stderr
        assert "learnplat secrets reencrypt" in r.stderr, r.stderr
        again = learnplat(env, "backup", "restore", str(archive), "--into", target.url)
        assert again.returncode == 1 and "is not empty" in again.stderr, again.stderr

        # The restored database served by a runtime of its own home: same secret, its own
        # storage directory and Redis keys (nothing cached by the source's runtime helps).
        settings = settings_for(home, target.url, target.redis_url, redis={"prefix": prefix})
        assert settings.storage.url == f"file://{home / 'storage'}"
        session_database = db.database.obj
        try:
            restored = create_runtime(settings)
        finally:  # create_runtime points the process's one proxy at it: the session's back
            db.database.initialize(session_database)
        with use_runtime(restored):
            assert migrate(restored) == []  # the backup's migration state came with it
            app = Client(create_app(restored), lp_tenant)
            login = app.post("/auth/login", json={"email": school["email"],
                                                  "password": STUDENT_PASSWORD})
            assert login.status_code == 200, login.text
            admin_email = next(u["email"] for u in before["/users"]["items"]
                               if u["role"] == "admin")
            admin_login = app.post("/auth/login", json={"email": admin_email,
                                                        "password": lp_users_password()})
            assert admin_login.status_code == 200, admin_login.text
            after = reads(app.as_(login.json["access_token"]),
                          app.as_(admin_login.json["access_token"]), school["course"])
        assert after == before
    finally:
        if restored is not None and hasattr(restored.database, "close_all"):
            restored.database.close_all()
        target.drop()
        forget_redis_keys(target.redis_url, prefix)


def lp_users_password() -> str:
    from learnplat_identity.testing import PASSWORD

    return PASSWORD


@pytest.mark.e2e
@pytest.mark.skipif(backend() != "postgres", reason="row-level security is PostgreSQL's")
def test_a_backup_as_the_row_level_security_bound_role_fails_and_leaves_no_archive(
        lp_runtime: Runtime, lp_tenant: TenantInfo, tmp_path: Path) -> None:
    """No backup.database_url: the application's role, which the schools' policies bind."""
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "nightly.tar"
    env = cli_env(tmp_path / "home", lp_runtime, lp_runtime.settings.database.url,
                  LEARNPLAT_STORAGE_URL=lp_runtime.settings.storage.url)
    r = learnplat(env, "backup", "create", "--output", str(archive))
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    # Refused by the count taken with row_security off, before pg_dump runs: naming the role,
    # what it would have written, and the fix.
    assert "learnplat_test_app" in r.stderr and "would hold none of the schools' rows" \
        in r.stderr and "learnplat backup setup-role" in r.stderr \
        and "LEARNPLAT_BACKUP_DATABASE_URL" in r.stderr, r.stderr
    assert list(out.iterdir()) == []  # no archive, no .partial, no staging directory


@pytest.mark.skipif(backend() != "postgres", reason="row-level security is PostgreSQL's")
def test_the_silent_empty_dump_of_issue_34_is_refused_by_the_row_count_check(
        lp_runtime: Runtime, lp_tenant: TenantInfo, lp_users: Any, tmp_path: Path) -> None:
    """`pg_dump --enable-row-security` as the application's role exits 0 and writes every
    school's table empty; counted against the live database, the dump is refused."""
    lp_users.make("student")  # the school has rows
    url = lp_runtime.settings.database.url
    dump = tmp_path / "silent.pgdump"
    r = subprocess.run(["pg_dump", "--format=custom", "--enable-row-security", "--no-password",
                        f"--file={dump}", "--dbname", url], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # what the sysadmin saw: success
    in_dump = count_pg_dump(dump)
    assert in_dump["identity_user"] == 0
    import psycopg2

    conn = psycopg2.connect(backup_role_url(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SET row_security = off")
            live = {}
            for table in in_dump:
                cur.execute(f'SELECT count(*) FROM "{table}"')
                live[table] = cur.fetchone()[0]
    finally:
        conn.close()
    assert live["identity_user"] > 0
    # The message names the first tables alphabetically (identity_user may be among "and N
    # more" in the session's well-filled database), and the cause.
    with pytest.raises(BackupError, match=r"0 of \d+ rows.*have rows but none in the dump.*"
                                          r"row-level security"):
        check_counts(live, in_dump, "the dump")


def test_a_damaged_archive_fails_verification(lp_runtime: Runtime, lp_tenant: TenantInfo,
                                              tmp_path: Path) -> None:
    """Every member is checked against the manifest's checksum before anything is restored."""
    source = lp_runtime.settings
    extra = {"LEARNPLAT_STORAGE_URL": source.storage.url}
    if backend() == "postgres":
        extra["LEARNPLAT_BACKUP_DATABASE_URL"] = backup_role_url(source.database.url)
    from learnplat.backup import create_backup

    archive = tmp_path / "b.tar"
    settings = settings_for(tmp_path, source.database.url, source.redis.url,
                             storage={"url": source.storage.url},
                             backup={"database_url": extra.get(
                                 "LEARNPLAT_BACKUP_DATABASE_URL", "")})
    create_backup(settings, archive)
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as tar, tarfile.open(damaged, "w") as out:
        for info in tar:
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if info.name.startswith("database."):
                data = data[:-1] + bytes([data[-1] ^ 1])
            out.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupError, match=r"database\.\w+ is damaged"):
        verify_archive(damaged)


def test_restore_accepts_the_backups_secret_among_the_old_ones(tmp_path: Path) -> None:
    """The secret check of `backup restore`: the current secret, or one of app.old_secret_keys
    (a backup from before a rotation; the note names it and asks for a re-encryption)."""
    old, older = "the-secret-before-rotation", "the-secret-two-rotations-ago"
    manifest = {"secret_fingerprint": secret_fingerprint(old.encode())}

    def settings(current: str, *olds: str) -> Any:
        return settings_for(tmp_path, "sqlite:///:memory:",
                            app={"secret_key": current, "old_secret_keys": list(olds)})

    assert _check_secret(manifest, settings(old), ignore=False) == []
    notes = _check_secret(manifest, settings("the-secret-after-rotation", older, old),
                          ignore=False)
    assert len(notes) == 1 and "app.old_secret_keys[1]" in notes[0], notes
    assert "learnplat secrets reencrypt" in notes[0]
    with pytest.raises(BackupError, match=r"app\.old_secret_keys"):
        _check_secret(manifest, settings("the-secret-after-rotation", older), ignore=False)
    assert _check_secret(manifest, settings("the-secret-after-rotation"), ignore=True)
