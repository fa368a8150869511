"""Backups that cannot silently be empty, and restores that prove what they restored
(`learnplat backup create|verify|restore|setup-role`; docs/deployment.md#backups-and-restore).

One .tar archive holds the database (PostgreSQL: `pg_dump -Fc` in an exported snapshot;
SQLite: the online backup API), the embedded key-value and queue files when there is no Redis,
the local storage files, and `manifest.json`: the learnplat version, the migrations applied,
every table's row count taken in the dump's own snapshot, a checksum of every member and a
fingerprint of app.secret_key (an HMAC of a constant, never the secret).

Why the counts: on PostgreSQL every school's table has a forced row-level security policy, so
a dump made by a role it applies to (`pg_dump --enable-row-security` as the application's role)
exits 0 with every school's table empty (issue 34). The live counts are taken with
`row_security = off`, which makes PostgreSQL refuse, rather than filter, a query a policy would
filter; the rows in the written dump are then counted and must equal them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse, urlunparse

from .errors import LearnplatError
from .settings import Settings

FORMAT = "learnplat-backup/1"
MANIFEST = "manifest.json"
PG_MEMBER = "database.pgdump"
SQLITE_MEMBER = "database.sqlite"
STORAGE_PREFIX = "storage/"
HISTORY_TABLE = "learnplat_migration"  # learnplat.migrate.HISTORY_TABLE (not imported: peewee)
DEFAULT_ROLE = "learnplat_backup"
# HMAC(app.secret_key, this): tells a restore whether its secret is the backup's, and gives
# nothing of the secret away (unlike a plain hash of a short secret, nothing to look up).
_FINGERPRINT_MESSAGE = b"learnplat backup: which app.secret_key encrypted the keys at rest, v1"
SETUP_HINT = ("create a backup role with `learnplat backup setup-role` (BYPASSRLS and "
              "pg_read_all_data) and set backup.database_url (LEARNPLAT_BACKUP_DATABASE_URL) "
              "to it")
_CHUNK = 1 << 20


class BackupError(LearnplatError):
    code, title = "backup_failed", "Backup or restore failed"


@dataclass
class Report:
    """What a backup, verification or restore did, for the command's summary line."""

    path: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.manifest["tables"].values())

    @property
    def files(self) -> int:
        return sum(1 for name in self.manifest["members"] if name.startswith(STORAGE_PREFIX))


# -- the secret ------------------------------------------------------------------------------


def current_secret(settings: Settings) -> bytes | None:
    """The secret this configuration encrypts keys with: app.secret_key, else the generated
    var/secret.key (development). Never generates one (learnplat.runtime would): a restore
    must compare with the secret the restored database will be served with."""
    if settings.app.secret_key:
        return settings.app.secret_key.encode()
    path = settings.var_path / "secret.key"
    return path.read_text().strip().encode() if path.exists() else None


def secret_fingerprint(secret: bytes) -> str:
    return hmac.new(secret, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


# -- PostgreSQL connections and tools --------------------------------------------------------


def backup_database_url(settings: Settings) -> tuple[str, str]:
    """The URL pg_dump connects with, and the setting it comes from."""
    if settings.backup.database_url:
        return settings.backup.database_url, "backup.database_url"
    return settings.database.url, "database.url, as backup.database_url is not set"


def is_postgres_url(url: str) -> bool:
    return urlparse(url).scheme in ("postgres", "postgresql")


def _without_password(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and an environment passing the password to libpq:
    a password on a command line is visible to every user of the machine (`ps`)."""
    parsed = urlparse(url)
    env = dict(os.environ)
    if parsed.password is None:
        return url, env
    from urllib.parse import unquote

    env["PGPASSWORD"] = unquote(parsed.password)
    userinfo, _, hostport = parsed.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunparse(parsed._replace(netloc=f"{user}@{hostport}" if user else hostport)), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found on PATH: install the PostgreSQL client tools "
                          "(Debian: postgresql-client) of the server's major version or newer")
    return found


def _run_tool(args: list[str], url: str, settings: Settings) -> None:
    conninfo, env = _without_password(url)
    env.setdefault("PGCONNECT_TIMEOUT", str(settings.database.connect_timeout))
    proc = subprocess.run([_tool(args[0]), *args[1:], "--no-password", "--dbname", conninfo],
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        # The first lines say what failed; the rest (the query pg_dump ran) only drown it.
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        detail = " ".join(lines[:2])[:400] or f"exit status {proc.returncode}"
        hint = f" ({SETUP_HINT})" if "row-level security" in detail else ""
        raise BackupError(f"{args[0]} failed: {detail}{hint}")


def _connect(url: str, settings: Settings) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(url, connect_timeout=settings.database.connect_timeout)
    except psycopg2.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BackupError(f"cannot connect to {_shown(url)}: {first}") from None


def _shown(url: str) -> str:
    """A URL for a message: the password masked."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    userinfo, _, hostport = parsed.netloc.rpartition("@")
    return urlunparse(parsed._replace(netloc=f"{userinfo.split(':', 1)[0]}:********@{hostport}"))


def _table_key(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


_PG_TABLES = ("SELECT n.nspname, c.relname, c.relforcerowsecurity, "
              "pg_get_userbyid(c.relowner) = current_user FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
              "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
              "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2")


def _pg_counts(cur: Any, source: str, restoring: bool = False) -> dict[str, int]:
    """Every table's rows as this transaction sees them. The caller set row_security off, so a
    table that a policy would filter for this role raises instead of counting too few."""
    import psycopg2
    from psycopg2 import sql

    cur.execute("SELECT current_user")
    role = cur.fetchone()[0]
    cur.execute(_PG_TABLES)
    counts = {}
    for schema, name, _, _ in cur.fetchall():
        try:
            cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)))
        except psycopg2.errors.InsufficientPrivilege as exc:
            cur.connection.rollback()
            if restoring:
                raise BackupError(f"cannot count the restored rows of table {name} as role "
                                  f"{role}: restore as the role that owns the database (the "
                                  "application's) or as a superuser") from None
            if "row-level security" in str(exc):
                raise BackupError(
                    f"role {role} ({source}) is subject to row-level security on table {name}: "
                    f"a dump made as it would hold none of the schools' rows; {SETUP_HINT}"
                ) from None
            raise BackupError(f"role {role} ({source}) may not read table {name}: "
                              f"{SETUP_HINT}") from None
        counts[_table_key(schema, name)] = cur.fetchone()[0]
    return counts


def _migrations(rows: list[tuple[str]]) -> dict[str, list[str]]:
    """The history rows ("plugin:0001_name") grouped by plugin."""
    out: dict[str, list[str]] = {}
    for (name,) in sorted(rows):
        plugin, _, migration = name.partition(":")
        out.setdefault(plugin, []).append(migration)
    return out


def _dump_postgres(settings: Settings, dest: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    """pg_dump -Fc into `dest` in a snapshot exported by a transaction that counts every
    table first: the live counts of exactly the rows the dump saw."""
    import psycopg2.extensions

    url, source = backup_database_url(settings)
    conn = _connect(url, settings)
    try:
        conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
                         readonly=True)
        with conn.cursor() as cur:
            cur.execute("SET LOCAL row_security = off")
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            live = _pg_counts(cur, source)
            migrations: dict[str, list[str]] = {}
            if HISTORY_TABLE in live:
                cur.execute(f"SELECT name FROM {HISTORY_TABLE}")
                migrations = _migrations(cur.fetchall())
            # The exporting transaction stays open until pg_dump has imported its snapshot.
            _run_tool(["pg_dump", "--format=custom", f"--snapshot={snapshot}",
                       f"--file={dest}"], url, settings)
    finally:
        conn.rollback()
        conn.close()
    return live, migrations


_COPY = re.compile(rb'^COPY ("(?:[^"]|"")+"|[^."\s]+)\.("(?:[^"]|"")+"|[^."\s]+) ')


def _unquote_ident(raw: bytes) -> str:
    text = raw.decode()
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def count_pg_dump(path: Path) -> dict[str, int]:
    """Rows per table in a custom-format dump: pg_restore turns its data into COPY blocks of
    one line per row (COPY's text format escapes newlines inside values)."""
    proc = subprocess.Popen([_tool("pg_restore"), "--data-only", "--file=-", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counts: dict[str, int] = {}
    current: str | None = None
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout:
        for line in proc.stdout:
            if current is None:
                if match := _COPY.match(line):
                    current = _table_key(_unquote_ident(match[1]), _unquote_ident(match[2]))
                    counts[current] = 0
            elif line == b"\\.\n":
                current = None
            else:
                counts[current] += 1
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.wait():
        raise BackupError(f"pg_restore cannot read {path.name}: {stderr.strip()[:300]}")
    return counts


def _pg_restore(settings: Settings, dump: Path, url: str, force: bool) -> dict[str, int]:
    """pg_restore into `url` as its own role (which then owns every table, as migrations
    expect), in one transaction: a failed restore leaves the database as it was."""
    args = ["pg_restore", "--no-owner", "--no-privileges", "--single-transaction",
            "--exit-on-error"]
    if force:
        args += ["--clean", "--if-exists"]
    _run_tool([*args, str(dump)], url, settings)
    return _pg_counts_as_owner(url, settings)


def _pg_counts_as_owner(url: str, settings: Settings) -> dict[str, int]:
    """Count every restored table as the restoring role. The application's role owns them but
    is bound by their forced policies, so FORCE is lifted in a transaction that is rolled back
    (as learnplat.migrate does for a migration): nobody else ever sees a table unforced."""
    from psycopg2 import sql

    conn = _connect(url, settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL row_security = off")
            cur.execute(_PG_TABLES)
            for schema, name, forced, owned in cur.fetchall():
                if forced and owned:
                    cur.execute(sql.SQL("ALTER TABLE {}.{} NO FORCE ROW LEVEL SECURITY").format(
                        sql.Identifier(schema), sql.Identifier(name)))
            return _pg_counts(cur, "the restore's database", restoring=True)
    finally:
        conn.rollback()
        conn.close()


def _pg_objects(url: str, settings: Settings) -> int:
    conn = _connect(url, settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                        "AND n.nspname NOT LIKE 'pg\\_%'")
            return int(cur.fetchone()[0])
    finally:
        conn.rollback()
        conn.close()


# -- SQLite ----------------------------------------------------------------------------------


def sqlite_path(url: str, settings: Settings) -> Path:
    from .db import make_database

    return Path(make_database(url, settings).database)


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names}


def _sqlite_copy(source: Path, dest: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The online backup API, run by a connection inside a read transaction that counted every
    table first: the copy is that transaction's snapshot, consistent under concurrent writes."""
    if not source.exists():
        raise BackupError(f"no database at {source}: nothing to back up")
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    try:
        src.execute("BEGIN")
        live = _sqlite_counts(src)
        migrations = (_migrations(src.execute(f"SELECT name FROM {HISTORY_TABLE}").fetchall())
                      if HISTORY_TABLE in live else {})
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()
    return live, migrations


def count_sqlite(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _sqlite_counts(conn)
    finally:
        conn.close()


def _embedded_files(settings: Settings) -> dict[str, Path]:
    """Member name -> path of the embedded stores that exist: the queue (tasks waiting) and
    the key-value store (revoked tokens, lockouts). With Redis they live there instead."""
    if settings.redis.url:
        return {}
    return {"var/kv.db": settings.var_path / "kv.db",
            "var/huey.db": settings.path(settings.queue.sqlite_path)}


# -- storage ---------------------------------------------------------------------------------


def local_storage_root(settings: Settings) -> Path | None:
    """The directory of file: storage; None for an object store (backed up by its own means)."""
    if urlparse(settings.storage.url).scheme != "file":
        return None
    from libcloud.storage.drivers.local import LocalStorageDriver

    from .storage import Storage

    driver = Storage(settings).driver
    assert isinstance(driver, LocalStorageDriver)  # a file: URL's driver
    return Path(driver.base_path)


def _storage_files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        # libcloud's local driver leaves lock files beside the objects: not data.
        if path.is_file() and not path.name.endswith(".lock"):
            yield STORAGE_PREFIX + path.relative_to(root).as_posix(), path


# -- counts ----------------------------------------------------------------------------------


def check_counts(expected: Mapping[str, int], found: Mapping[str, int], what: str) -> None:
    """Raise naming every table whose rows in `found` differ from `expected`."""
    wrong = [(t, n, found.get(t)) for t, n in sorted(expected.items()) if found.get(t) != n]
    if not wrong:
        return
    shown = ", ".join(f"{t} {'missing' if got is None else got} of {n} rows"
                      for t, n, got in wrong[:8])
    more = f" and {len(wrong) - 8} more" if len(wrong) > 8 else ""
    emptied = [t for t, n, got in wrong if n and not got]
    hint = (f"; {len(emptied)} table(s) have rows but none in {what}: was it made under "
            f"row-level security? {SETUP_HINT}") if emptied else ""
    raise BackupError(f"{what} does not hold every row: {shown}{more}{hint}")


# -- archives --------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """Reads a file for tarfile while hashing exactly the bytes that go into the archive."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.digest = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    info = tar.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with path.open("rb") as fh:
        hashing = _Hashing(fh)
        tar.addfile(info, hashing)
    return {"sha256": hashing.digest.hexdigest(), "bytes": info.size}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("learnplat")
    except PackageNotFoundError:
        return "unknown"


def default_output(now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now(dt.UTC)
    return Path(f"learnplat-backup-{now:%Y%m%dT%H%M%SZ}.tar")


def create_backup(settings: Settings, output: Path) -> Report:
    """Write the archive to `output`, or fail leaving nothing there: it is written as
    OUTPUT.partial and renamed only once every check has passed."""
    output = output.resolve()
    if output.exists():
        raise BackupError(f"{output} exists: choose another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    secret = current_secret(settings)
    partial = output.with_name(output.name + ".partial")
    staging = Path(tempfile.mkdtemp(prefix=".learnplat-backup-", dir=output.parent))
    try:
        if is_postgres_url(settings.database.url):
            backend, member = "postgresql", PG_MEMBER
            live, migrations = _dump_postgres(settings, staging / member)
            in_dump = count_pg_dump(staging / member)
        else:
            backend, member = "sqlite", SQLITE_MEMBER
            live, migrations = _sqlite_copy(sqlite_path(settings.database.url, settings),
                                            staging / member)
            in_dump = count_sqlite(staging / member)
        # The guarantee: every row the database held in the dump's snapshot is in the dump.
        check_counts(live, in_dump, "the dump")
        staged = {member: staging / member}
        for name, path in _embedded_files(settings).items():
            if path.exists():
                _sqlite_copy(path, staging / Path(name).name)
                staged[name] = staging / Path(name).name
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "learnplat_version": _version(),
            "backend": backend,
            "database": member,
            "tables": live,
            "migrations": migrations,
            "secret_fingerprint": secret_fingerprint(secret) if secret else None,
            "storage": settings.storage.url if local_storage_root(settings) else None,
            "members": {},
        }
        root = local_storage_root(settings)
        # The database first, then the files: an upload writes its file before its row
        # commits, so every file a row of the snapshot names is already there.
        # Owner-only from its first byte: it holds password hashes and every school's data.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            for name, path in staged.items():
                manifest["members"][name] = _add(tar, name, path)
            if root is not None:
                for name, path in _storage_files(root):
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        manifest["members"][name] = _add(tar, name, path)
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(dt.datetime.now(dt.UTC).timestamp())
            tar.addfile(info, io.BytesIO(data))
        verify_archive(partial, count_rows=False)  # what was written reads back, byte for byte
        os.replace(partial, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    notes = []
    if secret is None:
        notes.append("app.secret_key is not set: restores will need this machine's "
                     "var/secret.key")
    return Report(output, manifest, notes)


def _read_manifest(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        fh = tar.extractfile(MANIFEST)
    except KeyError:
        raise BackupError(f"{path} is not a learnplat backup (no {MANIFEST})") from None
    assert fh is not None
    manifest = json.loads(fh.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r}")
    return dict(manifest)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path, "r:") as tar:
            yield tar
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{path}: cannot read the archive: {exc}") from None


def _extract_checked(tar: tarfile.TarFile, manifest: dict[str, Any], dest: Path | None,
                     path: Path) -> None:
    """Check every member against the manifest (each listed member present, its checksum
    and size; nothing unlisted), writing them under `dest` when given."""
    seen = set()
    for info in tar:
        if info.name == MANIFEST:
            continue
        expected = manifest["members"].get(info.name)
        if expected is None or not info.isfile() or info.name.startswith("/") \
                or ".." in Path(info.name).parts:
            raise BackupError(f"{path}: unexpected member {info.name!r}")
        fh = tar.extractfile(info)
        assert fh is not None
        digest = hashlib.sha256()
        target = None
        if dest is not None:
            target = dest / info.name
            target.parent.mkdir(parents=True, exist_ok=True)
        with fh, (target.open("wb") if target else contextlib.nullcontext()) as out:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        if digest.hexdigest() != expected["sha256"]:
            raise BackupError(f"{path}: {info.name} is damaged (checksum differs from the "
                              "manifest)")
        seen.add(info.name)
    if missing := sorted(set(manifest["members"]) - seen):
        raise BackupError(f"{path}: {len(missing)} member(s) missing, e.g. {missing[0]}")


def verify_archive(path: Path, count_rows: bool = True) -> Report:
    """Check an archive without a database: the manifest, every checksum, and (count_rows)
    that the dump holds every row the manifest counted in the live database."""
    with _opened(path) as tar:
        manifest = _read_manifest(tar, path)
        if not count_rows:
            _extract_checked(tar, manifest, None, path)
            return Report(path, manifest)
        with tempfile.TemporaryDirectory(prefix="learnplat-verify-") as tmp:
            _extract_checked(tar, manifest, Path(tmp), path)
            dump = Path(tmp) / manifest["database"]
            found = (count_pg_dump(dump) if manifest["backend"] == "postgresql"
                     else count_sqlite(dump))
            check_counts(manifest["tables"], found, "the dump")
    return Report(path, manifest)


# -- restore ---------------------------------------------------------------------------------


def _check_secret(manifest: dict[str, Any], settings: Settings, ignore: bool) -> list[str]:
    recorded = manifest.get("secret_fingerprint")
    secret = current_secret(settings)
    if recorded is None or ignore:
        return ["the secret was not checked: every login fails unless app.secret_key is the "
                "one the backup was made with"] if ignore else []
    if secret is None:
        raise BackupError("app.secret_key is not set: set it (LEARNPLAT_APP_SECRET_KEY) to the "
                          "secret the backup was made with; the schools' keys in it are "
                          "encrypted with that secret (--ignore-secret restores anyway)")
    if secret_fingerprint(secret) == recorded:
        return []
    # A backup made before a rotation: the restored keys decrypt under an old secret (the
    # runtime accepts every secret in force, learnplat.secret_keys), so the restore is safe;
    # they stay encrypted under the old one until `learnplat secrets reencrypt` rewrites them.
    olds = settings.app.old_secret_keys
    for n, old in enumerate(olds):
        if secret_fingerprint(old.encode()) == recorded:
            return [f"the backup was made with app.old_secret_keys[{n}] (entry {n + 1} of "
                    f"{len(olds)}, fingerprint {recorded}), not the current app.secret_key: "
                    "after restoring, run `learnplat secrets reencrypt` so that the schools' "
                    "keys are encrypted with the current secret before that old one is removed"]
    raise BackupError(f"app.secret_key differs from the one the backup was made with, and "
                      f"app.old_secret_keys ({len(olds)}) holds none that matches (fingerprint "
                      f"{secret_fingerprint(secret)}, backup {recorded}): the schools' keys in "
                      "it are encrypted with that secret, so every login would fail; set "
                      "app.secret_key to it or list it in app.old_secret_keys (--ignore-secret "
                      "restores anyway)")


def restore_backup(settings: Settings, archive: Path, into: str | None = None,
                   force: bool = False, ignore_secret: bool = False) -> Report:
    """Restore `archive` into an empty database (`into`, else database.url), then the embedded
    stores and the local storage files; every row count is checked against the manifest."""
    url = into or settings.database.url
    with _opened(archive) as tar:
        manifest = _read_manifest(tar, archive)
    notes = _check_secret(manifest, settings, ignore_secret)
    backend = "postgresql" if is_postgres_url(url) else "sqlite"
    if backend != manifest["backend"]:
        raise BackupError(f"the backup is of a {manifest['backend']} database; {_shown(url)} "
                          f"is {backend} (move between backends is not supported)")
    root = local_storage_root(settings) if manifest.get("storage") else None
    # Every refusal before anything is written.
    if backend == "postgresql":
        objects = _pg_objects(url, settings)
    else:
        target = sqlite_path(url, settings)
        objects = len(count_sqlite(target)) if target.exists() else 0
    if objects and not force:
        raise BackupError(f"{_shown(url)} is not empty ({objects} tables or other objects): "
                          "restore into an empty database, or pass --force to replace the "
                          "backup's tables in it")
    if root is not None and any(_storage_files(root)) and not force:
        raise BackupError(f"the storage directory {root} is not empty: restore into an empty "
                          "one, or pass --force to overwrite its files")
    embedded = {} if settings.redis.url else _embedded_files(settings)
    with tempfile.TemporaryDirectory(prefix="learnplat-restore-") as tmp:
        with _opened(archive) as tar:
            _extract_checked(tar, manifest, Path(tmp), archive)
        dump = Path(tmp) / manifest["database"]
        if backend == "postgresql":
            found = _pg_restore(settings, dump, url, force)
        else:
            found = _sqlite_restore(dump, target)
        check_counts(manifest["tables"], found, "the restored database")
        for name, path in embedded.items():
            if name in manifest["members"] and (force or not path.exists()):
                path.parent.mkdir(parents=True, exist_ok=True)
                _sqlite_restore(Path(tmp) / name, path)
        files = [n for n in manifest["members"] if n.startswith(STORAGE_PREFIX)]
        if files and root is None:
            notes.append(f"{len(files)} stored file(s) not restored: storage.url is not a "
                         "file: directory; copy them from the archive's storage/ yourself")
        for name in files if root is not None else []:
            target_file = root / name[len(STORAGE_PREFIX):]
            target_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(tmp) / name, target_file)  # /tmp may be another filesystem
    if manifest["learnplat_version"] != _version():
        notes.append(f"the backup was made by learnplat {manifest['learnplat_version']}, this "
                     f"is {_version()}: run `learnplat migrate` before serving")
    return Report(archive, manifest, notes)


def _sqlite_restore(source: Path, target: Path) -> dict[str, int]:
    """Copy `source` over `target` with the backup API (a live WAL file is taken care of),
    and count what `target` then holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
        return _sqlite_counts(dst)
    finally:
        src.close()
        dst.close()


# -- the backup role -------------------------------------------------------------------------

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def role_statements(role: str, password: str | None, exists: bool = False) -> list[str]:
    """SQL making `role` a login role that reads every row: BYPASSRLS (the schools' policies do
    not filter it) and pg_read_all_data (SELECT on every table, present and future), nothing
    more: it may not write, create or administer."""
    if not _ROLE_NAME.match(role):
        raise BackupError(f"invalid role name {role!r} (lower-case letters, digits, _)")
    options = "LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT"
    if password:
        options += " PASSWORD '" + password.replace("'", "''") + "'"
    verb = "ALTER" if exists else "CREATE"
    return [f"{verb} ROLE {role} {options}", f"GRANT pg_read_all_data TO {role}"]


def setup_role(admin_url: str, role: str, password: str | None, settings: Settings) -> bool:
    """Create (or bring up to date) the backup role; True when it was created."""
    import psycopg2

    conn = _connect(admin_url, settings)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            exists = cur.fetchone() is not None
            statements = role_statements(role, password, exists)
            for statement in statements:
                try:
                    try:
                        cur.execute(statement)
                    except psycopg2.errors.DuplicateObject:  # made meanwhile by another run
                        exists = True
                        cur.execute(role_statements(role, password, exists=True)[0])
                except psycopg2.Error as exc:
                    first = (str(exc).strip().splitlines() or [""])[0]
                    raise BackupError(f"{statement.split(' PASSWORD ')[0]}: {first} (the "
                                      "admin URL needs a superuser: only one may grant "
                                      "BYPASSRLS)") from None
    finally:
        conn.close()
    return not exists


def role_url(database_url: str, role: str) -> str:
    """database.url with `role` as its user and no password (libpq finds it in ~/.pgpass or
    PGPASSWORD)."""
    parsed = urlparse(database_url)
    hostport = parsed.netloc.rpartition("@")[2]
    return urlunparse(parsed._replace(netloc=f"{role}@{hostport}"))
