"""GCRA, the generic cell rate algorithm of the rate limits (decision 0012): one step in
Python (the embedded key-value store) and the same arithmetic as a Redis Lua script (the Redis
store), with the budgets it charges and the decisions it answers.

learnplat.kv runs the algorithm where the counters live; learnplat.ratelimit decides which
budgets a request is charged. Neither imports the other for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    @property
    def window(self) -> int:
        """Seconds an empty budget takes to refill: the quota's window in the headers."""
        return max(1, math.ceil(self.burst / self.per_second))


@dataclass(frozen=True)
class Check:
    """Charge `cost` units to the budget stored under `key`."""

    key: str
    policy: str  # the name clients see in the RateLimit headers
    rate: Rate
    cost: int


@dataclass(frozen=True)
class Decision:
    policy: str
    allowed: bool
    rate: Rate
    remaining: int  # whole units left after this request
    reset: float  # seconds until the budget is full again
    retry_after: float  # seconds until this request would be allowed (0 when allowed)


def gcra(tat: float | None, now: float, check: Check) -> tuple[Decision, float]:
    """One GCRA step in seconds: the decision and the new theoretical arrival time. The Redis
    script (ROUND_TRIP_SCRIPT) does the same arithmetic in microseconds."""
    interval = 1.0 / check.rate.per_second
    tolerance = interval * check.rate.burst
    tat = max(tat or now, now)
    new = tat + interval * check.cost
    ahead = new - now
    if ahead <= tolerance:
        remaining = int((tolerance - ahead) / interval + 1e-9)
        return Decision(check.policy, True, check.rate, remaining, ahead, 0.0), new
    remaining = max(0, int((tolerance - (tat - now)) / interval + 1e-9))
    return Decision(check.policy, False, check.rate, remaining, tat - now,
                    ahead - tolerance), tat


# Reads KEYS[1..n] and charges the GCRA budgets in the remaining keys, all or nothing, at
# Redis's own clock (microseconds). ARGV: n, then per budget: interval, tolerance, cost. Per
# budget it answers allowed (1/0), remaining units, reset and retry-after in microseconds.
ROUND_TRIP_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do out[i] = redis.call('GET', KEYS[i]) end
local ok = true
local news = {}
for j = n + 1, #KEYS do
  local a = 2 + (j - n - 1) * 3
  local interval, tolerance, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local tat = tonumber(redis.call('GET', KEYS[j])) or now
  if tat < now then tat = now end
  local new = tat + interval * cost
  local ahead = new - now
  if ahead <= tolerance then
    news[j] = new
    out[#out + 1] = 1
    out[#out + 1] = math.floor((tolerance - ahead) / interval)
    out[#out + 1] = ahead
    out[#out + 1] = 0
  else
    ok = false
    local left = math.floor((tolerance - (tat - now)) / interval)
    if left < 0 then left = 0 end
    out[#out + 1] = 0
    out[#out + 1] = left
    out[#out + 1] = tat - now
    out[#out + 1] = ahead - tolerance
  end
end
if ok then
  for j = n + 1, #KEYS do
    redis.call('SET', KEYS[j], news[j], 'PX', math.floor((news[j] - now) / 1000) + 1000)
  end
end
return out
"""


def script_arguments(reads: int, checks: Sequence[Check]) -> list[Any]:
    """ROUND_TRIP_SCRIPT's ARGV for `reads` keys read and `checks` charged (KEYS: the keys
    read, then each check's key)."""
    args: list[Any] = [reads]
    for c in checks:
        interval = 1_000_000 / c.rate.per_second
        args += [interval, interval * c.rate.burst, c.cost]
    return args


def script_decisions(reply: Sequence[Any], reads: int, checks: Sequence[Check]
                     ) -> list[Decision]:
    """The decisions in ROUND_TRIP_SCRIPT's `reply` (after the `reads` values read)."""
    decisions = []
    for i, c in enumerate(checks):
        allowed, remaining, reset, retry = reply[reads + 4 * i: reads + 4 * i + 4]
        decisions.append(Decision(c.policy, bool(allowed), c.rate, int(remaining),
                                  int(reset) / 1e6, int(retry) / 1e6))
    return decisions
