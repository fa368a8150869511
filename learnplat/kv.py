"""Short-lived keys (token revocations, rate-limit counters, heartbeats) in Redis, or embedded.

The embedded store is a separate SQLite file, not the main database: a counter bumped by a
request that then fails (a refused login) must survive that request's rollback.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import redis


class KeyValueStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: float) -> int: ...
    def ttl(self, key: str) -> float | None: ...
    def ping(self) -> None: ...


class RedisStore:
    def __init__(self, client: redis.Redis, prefix: str = "learnplat:"):
        self.client = client
        self.prefix = prefix

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

    def purge_expired(self) -> int:
        return self._conn().execute("DELETE FROM kv WHERE expires <= ?", (time.time(),)).rowcount


def make_store(redis_client: Any, var_path: Path, prefix: str = "learnplat") -> KeyValueStore:
    if redis_client is not None:
        return RedisStore(redis_client, prefix=f"{prefix}:")
    return EmbeddedStore(var_path / "kv.db")
