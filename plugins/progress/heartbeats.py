"""Write-behind of video heartbeats through Redis.

A heartbeat updates one Redis hash per (tenant, course, user, module) atomically (a Lua script
running the rules of playback.py) and adds the hash to a set of dirty keys. The periodic task
``progress.flush_heartbeats`` pops dirty keys in batches and upserts them into the database,
one transaction per tenant. Completion (crossing the watch threshold) never waits for the
flush: the request writes it through at once (services.ProgressService).

What a crash loses: Redis keeps the state across app restarts; a Redis restart without
persistence loses what was recorded since the last flush (at most one flush interval), and the
next heartbeat reloads the state from the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import redis

from learnplat.plugin import RedisScript

from .playback import Playback
from .settings import ProgressSettings

log = logging.getLogger(__name__)

_BATCH = 500

# KEYS: state hash, dirty set, stats hash.
# ARGV: position, duration, now, ratio, max_rate, max_gap, ttl, dirty member, has_init,
#       init last_position, furthest, watched, duration, done, seen.
# Returns nil when the state is not cached (the caller loads it from the database and calls
# again with has_init=1), else {last, furthest, watched, duration, seen, crossed}.
_RECORD = """
local k = KEYS[1]
if ARGV[16] ~= '' and redis.call('HEXISTS', KEYS[4], ARGV[16]) == 0 then return -1 end
if redis.call('EXISTS', k) == 0 then
  if ARGV[9] == '0' then return false end
  redis.call('HSET', k, 'pos', ARGV[10], 'furthest', ARGV[11], 'watched', ARGV[12],
             'duration', ARGV[13], 'done', ARGV[14], 'seen', ARGV[15])
end
local pos = tonumber(ARGV[1])
local dur = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ratio = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local gap = tonumber(ARGV[6])
local s = redis.call('HMGET', k, 'pos', 'furthest', 'watched', 'seen', 'done')
local last = tonumber(s[1]) or 0
local furthest = tonumber(s[2]) or 0
local watched = tonumber(s[3]) or 0
local seen = tonumber(s[4]) or 0
if pos > dur then pos = dur end
if seen > 0 then
  local elapsed = now - seen
  if elapsed < 0 then elapsed = 0 end
  if elapsed > gap then elapsed = gap end
  local delta = pos - last
  if delta > 0 then watched = watched + math.min(delta, elapsed * rate) end
end
if pos > furthest then furthest = pos end
if furthest > dur then furthest = dur end
if watched > dur then watched = dur end
local crossed = 0
local need = ratio * dur - 0.000001
if s[5] ~= '1' and furthest >= need and watched >= need then crossed = 1 end
redis.call('HSET', k, 'pos', tostring(pos), 'furthest', tostring(furthest),
           'watched', tostring(watched), 'duration', tostring(dur), 'seen', tostring(now))
redis.call('EXPIRE', k, tonumber(ARGV[7]))
redis.call('SADD', KEYS[2], ARGV[8])
redis.call('HINCRBY', KEYS[3], 'heartbeats', 1)
return {tostring(pos), tostring(furthest), tostring(watched), tostring(dur), tostring(now),
        crossed}
"""


def member(tenant_id: int, course_id: int, user_id: int, module_id: int) -> str:
    return f"{tenant_id}:{course_id}:{user_id}:{module_id}"


def _text(reply: bytes | str) -> str:
    """A Redis reply as text. redis-py types its replies bytes | str (str with
    decode_responses); this store's client answers bytes."""
    return reply if isinstance(reply, str) else reply.decode()


def _playback(raw: dict[bytes, bytes]) -> Playback:
    def num(name: str) -> float:
        return float(raw.get(name.encode(), b"0") or 0)

    return Playback(num("pos"), num("furthest"), num("watched"), num("duration") or None,
                    num("seen"))


class HeartbeatStore:
    """Keys live under ``{redis.prefix}:progress:`` so deployments (and test runs) sharing a
    Redis database never flush each other's state."""

    def __init__(self, client: redis.Redis, settings: Callable[[], ProgressSettings],
                 prefix: str = "learnplat"):
        self.redis = client
        self._settings = settings
        self._record = RedisScript(client, _RECORD)
        self.prefix = f"{prefix}:progress"
        self.dirty = f"{self.prefix}:dirty"
        self.stats_key = f"{self.prefix}:stats"
        self.flush_gate = f"{self.prefix}:flush-gate"

    def state_key(self, m: str) -> str:
        return f"{self.prefix}:hb:{m}"

    def access_key(self, tenant_id: int, course_id: int, user_id: int) -> str:
        return f"{self.prefix}:ok:{tenant_id}:{course_id}:{user_id}"

    @property
    def settings(self) -> ProgressSettings:
        return self._settings()

    # -- requests ------------------------------------------------------------------------------

    def record(self, tenant_id: int, course_id: int, user_id: int, module_id: int,
               position: float, duration: float, now: float,
               load: Callable[[], tuple[Playback, bool]], check_access: bool = False
               ) -> tuple[Playback, bool] | None:
        """Apply one heartbeat; (new state, crossed the completion threshold now).

        `load()` gives the database's (state, done) when Redis has no state for the key.
        With `check_access`, nothing is recorded and None is answered unless the access cache
        (`remember_access`) holds the module: the usual heartbeat is then one round trip."""
        s = self.settings
        m = member(tenant_id, course_id, user_id, module_id)
        args: list[Any] = [position, duration, now, s.video_complete_ratio,
                           s.max_playback_rate, s.max_heartbeat_gap_seconds,
                           s.state_ttl_seconds, m, 0, 0, 0, 0, 0, 0, 0,
                           module_id if check_access else ""]
        keys = [self.state_key(m), self.dirty, self.stats_key,
                self.access_key(tenant_id, course_id, user_id)]
        out = self._record(keys=keys, args=args)
        if out == -1:
            return None
        if out is None:
            state, done = load()
            args[8:15] = [1, state.last_position, state.furthest, state.watched,
                          state.duration or 0, 1 if done else 0, state.seen]
            out = self._record(keys=keys, args=args)
        pos, furthest, watched, dur, seen = (float(v) for v in out[:5])
        return Playback(pos, furthest, watched, dur, seen), bool(int(out[5]))

    def mark_done(self, tenant_id: int, course_id: int, user_id: int, module_id: int) -> None:
        """The crossing was written to the database: later heartbeats must not cross again."""
        key = self.state_key(member(tenant_id, course_id, user_id, module_id))
        if self.redis.exists(key):
            self.redis.hset(key, "done", "1")

    def peek(self, tenant_id: int, course_id: int, user_id: int,
             module_ids: Iterable[int]) -> dict[int, Playback]:
        """Not-yet-flushed states of some modules (those Redis holds)."""
        ids = list(module_ids)
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for mid in ids:
            pipe.hgetall(self.state_key(member(tenant_id, course_id, user_id, mid)))
        return {mid: _playback(raw) for mid, raw in zip(ids, pipe.execute(), strict=True)
                if raw}

    def access_ok(self, tenant_id: int, course_id: int, user_id: int, module_id: int) -> bool:
        return bool(self.redis.hexists(self.access_key(tenant_id, course_id, user_id), module_id))

    def remember_access(self, tenant_id: int, course_id: int, user_id: int,
                        module_id: int) -> None:
        ttl = self.settings.access_cache_seconds
        if ttl <= 0:
            return
        key = self.access_key(tenant_id, course_id, user_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, module_id, 1)
        pipe.expire(key, ttl)
        pipe.execute()

    def forget_access(self, tenant_id: int, course_id: int, user_id: int) -> None:
        self.redis.delete(self.access_key(tenant_id, course_id, user_id))

    def count(self, field: str, amount: int = 1) -> None:
        self.redis.hincrby(self.stats_key, field, amount)

    def stats(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.redis.hgetall(self.stats_key).items()}

    # -- the flush task ------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether this minute's run of the periodic task should flush (the interval is whole
        minutes; a gate key shared by every worker spaces the flushes)."""
        interval = self.settings.heartbeat_flush_seconds
        if interval <= 60:
            return True
        return bool(self.redis.set(self.flush_gate, 1, nx=True, ex=interval - 5))

    def flush(self, persist: Callable[[int, list[tuple[int, int, int, Playback]]], int]
              ) -> dict[str, int]:
        """Pop dirty keys and persist them, grouped by tenant: `persist(tenant_id, rows)` writes
        [(course_id, user_id, module_id, state)] in one transaction and returns the number of
        write statements. Keys of a failed tenant go back into the dirty set."""
        totals = {"rows": 0, "statements": 0, "transactions": 0, "failed": 0}
        failed: list[str] = []
        while True:
            popped = self.redis.spop(self.dirty, _BATCH)
            if not popped:
                break
            # With a count SPOP answers the members (a list), never one member.
            assert not isinstance(popped, bytes | str)
            members = [_text(p) for p in popped]
            pipe = self.redis.pipeline(transaction=False)
            for m in members:
                pipe.hgetall(self.state_key(m))
            by_tenant: dict[int, list[tuple[str, tuple[int, int, int, Playback]]]] = \
                defaultdict(list)
            for m, raw in zip(members, pipe.execute(), strict=True):
                if not raw:
                    continue  # expired: nothing left to write
                tenant_id, course_id, user_id, module_id = (int(x) for x in m.split(":"))
                by_tenant[tenant_id].append((m, (course_id, user_id, module_id, _playback(raw))))
            for tenant_id, entries in by_tenant.items():
                try:
                    statements = persist(tenant_id, [e for _, e in entries])
                except Exception:
                    log.exception("progress: flushing %d heartbeat states of tenant %s failed;"
                                  " they stay dirty", len(entries), tenant_id)
                    failed.extend(m for m, _ in entries)
                    totals["failed"] += len(entries)
                    continue
                totals["rows"] += len(entries)
                totals["statements"] += statements
                totals["transactions"] += 1
            if len(members) < _BATCH:
                break
        if failed:  # back into the set only now, so this run does not pop them again
            self.redis.sadd(self.dirty, *failed)
        if totals["transactions"]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(self.stats_key, "flush_rows", totals["rows"])
            pipe.hincrby(self.stats_key, "flush_statements", totals["statements"])
            pipe.hincrby(self.stats_key, "flush_transactions", totals["transactions"])
            pipe.execute()
        return totals
