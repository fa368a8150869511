"""Short-lived keys (token revocations, rate-limit counters, heartbeats) in Redis, or embedded.

The embedded store is a separate SQLite file, not the main database: a counter bumped by a
request that then fails (a refused login) must survive that request's rollback.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import redis

from .gcra import ROUND_TRIP_SCRIPT, Check, Decision, gcra, script_arguments, script_decisions


class StoreUnavailable(Exception):
    """The key-value store could not be reached (Redis down or timing out)."""


class KeyValueStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: float) -> int: ...
    def ttl(self, key: str) -> float | None: ...
    def ping(self) -> None: ...
    def get_many(self, keys: Sequence[str]) -> list[str | None]: ...
    def set_many(self, values: Mapping[str, str], ttl: float) -> None: ...
    def failing(self, within: float = 10.0) -> bool: ...
    def add(self, key: str, value: str, ttl: float) -> bool: ...
    def round_trip(self, reads: Sequence[str], checks: Sequence[Check]
                   ) -> tuple[list[str | None], list[Decision]]: ...


# Sets KEYS[1..n] to ARGV[1] with a time to live of ARGV[2] ms (generation bumps, after commit).
_SET_ALL = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return #KEYS
"""


class RedisScript:
    """`script(keys, args)`: a Lua script run with EVALSHA on this thread's own connection of
    `client`'s pool (one per thread and pool, shared by every script). For the scripts a
    request runs every time (the authentication and limits round trip, a heartbeat): it skips
    redis-py's per-command machinery (pool checkout, retry wrapper, response callbacks), about
    half of the client's CPU per call. Errors are redis-py's own (ConnectionError,
    TimeoutError, ResponseError), so callers handle them as for any other command."""

    _local = threading.local()

    def __init__(self, client: redis.Redis, source: str):
        self.client = client
        self.source = source
        self.sha: str | None = None

    def _connection(self) -> Any:
        pool = self.client.connection_pool
        conns = getattr(self._local, "conns", None)
        if conns is None or self._local.pid != os.getpid():  # a fork: never share a socket
            conns = self._local.conns = {}
            self._local.pid = os.getpid()
        # Keyed by the pool's id, checked against the pool itself: a pool freed and another
        # made at the same address (a runtime replaced) must not get the old one's socket.
        entry = conns.get(id(pool))
        if entry is None or entry[0]() is not pool:
            entry = conns[id(pool)] = (weakref.ref(pool), pool.make_connection())
        return entry[1]

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        conn = self._connection()
        if self.sha is None:
            self.sha = self.client.script_load(self.source)
        try:
            try:
                conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
                return conn.read_response()
            except redis.exceptions.NoScriptError:  # Redis restarted or flushed its scripts
                self.sha = self.client.script_load(self.source)
                conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
                return conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # the script's own error: the reply was read whole, the connection is fine
        except BaseException:
            conn.disconnect()  # a half-read reply must not be the next call's answer
            raise


class RedisStore:
    def __init__(self, client: redis.Redis, prefix: str = "learnplat:"):
        self.client = client
        self.prefix = prefix
        self._script = RedisScript(client, ROUND_TRIP_SCRIPT)
        self._set_all = RedisScript(client, _SET_ALL)
        # When a call last found Redis down or hung: writes that can wait (generation bumps,
        # learnplat.answers) are then queued, not each made to wait out the timeout again.
        self.failed_at = -math.inf

    def failing(self, within: float = 10.0) -> bool:
        """Whether the last call failed (refused, timed out), less than `within` seconds ago:
        longer than the timeouts, so a request that waited them out once finds it still set.
        Any call that succeeds clears it."""
        return time.monotonic() - self.failed_at < within

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        self.failed_at = time.monotonic()
        return StoreUnavailable(str(exc))

    def get(self, key: str) -> str | None:
        value = self.client.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self.client.set(self.prefix + key, value, px=int(ttl * 1000) if ttl else None)

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def incr(self, key: str, ttl: float) -> int:
        pipe = self.client.pipeline()
        pipe.incr(self.prefix + key)
        pipe.pexpire(self.prefix + key, int(ttl * 1000), nx=True)
        count, _ = pipe.execute()
        return int(count)

    def ttl(self, key: str) -> float | None:
        ms = self.client.pttl(self.prefix + key)
        return None if ms < 0 else ms / 1000

    def ping(self) -> None:
        self.client.ping()

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        try:
            values = self.client.mget([self.prefix + k for k in keys])
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        self.failed_at = -math.inf
        return [v.decode() if isinstance(v, bytes) else v for v in values]

    def set_many(self, values: Mapping[str, str], ttl: float) -> None:
        """One round trip per distinct value (a transaction's bumps share one), however many
        keys. Runs after every commit that changes a cached answer (a module completed, an
        enrollment), so it goes through RedisScript like the authentication round trip: no
        redis-py pipeline object, pool checkout or retry wrapper per call."""
        by_value: dict[str, list[str]] = {}
        for key, value in values.items():
            by_value.setdefault(value, []).append(self.prefix + key)
        try:
            for value, keys in by_value.items():
                self._set_all(keys, [value, int(ttl * 1000)])
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc
        self.failed_at = -math.inf

    def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(self.client.set(self.prefix + key, value, px=int(ttl * 1000), nx=True))

    def round_trip(self, reads: Sequence[str], checks: Sequence[Check]
                   ) -> tuple[list[str | None], list[Decision]]:
        keys = [self.prefix + k for k in (*reads, *(c.key for c in checks))]
        try:
            out = self._script(keys, script_arguments(len(reads), checks))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc
        if self.failed_at != -math.inf:
            self.failed_at = -math.inf  # back
        n = len(reads)
        values = [v.decode() if isinstance(v, bytes) else v for v in out[:n]]
        return values, script_decisions(out, n, checks)


class EmbeddedStore:
    """Redis-like keys with expiry in a SQLite file shared by all processes of one machine."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT, expires REAL)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=wal")
            self._local.conn = conn
        return conn

    def _live(self, conn: sqlite3.Connection, key: str) -> tuple[str, float | None] | None:
        row = conn.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return row[0], row[1]

    def get(self, key: str) -> str | None:
        live = self._live(self._conn(), key)
        return live[0] if live else None

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        expires = time.time() + ttl if ttl else None
        self._conn().execute(
            "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
            (key, value, expires),
        )

    def failing(self, within: float = 10.0) -> bool:
        return False  # a local file: it fails loudly or not at all

    def set_many(self, values: Mapping[str, str], ttl: float) -> None:
        expires = time.time() + ttl
        self._conn().executemany(
            "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
            [(key, value, expires) for key, value in values.items()],
        )

    def delete(self, key: str) -> None:
        self._conn().execute("DELETE FROM kv WHERE key = ?", (key,))

    def incr(self, key: str, ttl: float) -> int:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            live = self._live(conn, key)
            count = int(live[0]) + 1 if live else 1
            expires = live[1] if live else time.time() + ttl
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, str(count), expires),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    def ttl(self, key: str) -> float | None:
        live = self._live(self._conn(), key)
        if not live or live[1] is None:
            return None
        return max(0.0, live[1] - time.time())

    def ping(self) -> None:
        self._conn().execute("SELECT 1")

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        conn = self._conn()
        return [live[0] if (live := self._live(conn, k)) else None for k in keys]

    def add(self, key: str, value: str, ttl: float) -> bool:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._live(conn, key) is not None:
                return False
            conn.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                         (key, value, time.time() + ttl))
            return True
        finally:
            conn.execute("COMMIT")

    def round_trip(self, reads: Sequence[str], checks: Sequence[Check]
                   ) -> tuple[list[str | None], list[Decision]]:
        conn = self._conn()
        if not checks:
            return self.get_many(reads), []
        conn.execute("BEGIN IMMEDIATE")
        try:
            values = [live[0] if (live := self._live(conn, k)) else None for k in reads]
            now = time.time()
            steps = []
            for c in checks:
                live = self._live(conn, c.key)
                steps.append(gcra(float(live[0]) if live else None, now, c))
            if all(d.allowed for d, _ in steps):
                conn.executemany(
                    "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                    [(c.key, repr(tat), tat + 1)
                     for c, (_, tat) in zip(checks, steps, strict=True)])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return values, [d for d, _ in steps]

    def purge_expired(self) -> int:
        return self._conn().execute("DELETE FROM kv WHERE expires <= ?", (time.time(),)).rowcount


def make_store(redis_client: Any, var_path: Path, prefix: str = "learnplat") -> KeyValueStore:
    if redis_client is not None:
        return RedisStore(redis_client, prefix=f"{prefix}:")
    return EmbeddedStore(var_path / "kv.db")
