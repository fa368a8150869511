"""Generations and validity of cached answers (learnplat.answers): bumped after commit, in one
key-value round trip per transaction, per tenant or per (tenant, user); and the lifetime an
answer's computation declares."""

from __future__ import annotations

import math
import time

import pytest

from learnplat import db
from learnplat.answers import (
    AnswerCache,
    GenerationWriter,
    bump_generation,
    computing,
    generation_key,
    valid_until,
)
from learnplat.kv import StoreUnavailable
from learnplat.tenancy import tenant_context


class CountingStore:
    """The runtime's store, counting the writes that bumps make."""

    def __init__(self, store):
        self.store, self.calls = store, []

    def set(self, key, value, ttl=None):
        self.calls.append(("set", [key]))
        self.store.set(key, value, ttl)

    def set_many(self, values, ttl):
        self.calls.append(("set_many", sorted(values)))
        self.store.set_many(values, ttl)

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture
def kv(lp_runtime, monkeypatch):
    counting = CountingStore(lp_runtime.kv)
    monkeypatch.setattr(lp_runtime, "kv", counting)
    monkeypatch.setattr(lp_runtime.generations, "store", counting)  # the bumps' writer
    return counting


def test_keys_name_the_tenant_and_the_user():
    assert generation_key(3, "courses.catalogue") == "gen:3:courses.catalogue"
    assert generation_key(3, "courses.learner", 17) == "gen:3:courses.learner:u:17"


def test_bumps_wait_for_the_commit_and_go_in_one_round_trip(lp_runtime, lp_tenant, kv):
    keys = [generation_key(lp_tenant.id, "t.learner", u) for u in (1, 2, 3)]
    tenant_key = generation_key(lp_tenant.id, "t.things")
    before = kv.get_many([*keys, tenant_key])
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        for user_id in (1, 2, 3, 2):
            bump_generation(lp_runtime, "t.learner", user_id=user_id)
        bump_generation(lp_runtime, "t.things")
        assert kv.calls == []  # nothing before the commit
        assert kv.get_many([*keys, tenant_key]) == before
    assert kv.calls == [("set_many", sorted([*keys, tenant_key]))]
    after = kv.get_many([*keys, tenant_key])
    assert all(a is not None and a != b for a, b in zip(after, before, strict=True))


def test_a_rolled_back_transaction_bumps_nothing(lp_runtime, lp_tenant, kv):
    key = generation_key(lp_tenant.id, "t.learner", 5)
    kv.set(key, "old", 60)
    kv.calls.clear()
    with pytest.raises(RuntimeError), db.connection(), tenant_context(lp_tenant), \
            db.transaction():
        bump_generation(lp_runtime, "t.learner", user_id=5)
        raise RuntimeError("roll back")
    assert kv.calls == [] and kv.get(key) == "old"


def test_outside_a_transaction_the_bump_is_at_once(lp_runtime, lp_tenant, kv):
    bump_generation(lp_runtime, "t.things", tenant_id=lp_tenant.id)
    assert kv.calls == [("set_many", [generation_key(lp_tenant.id, "t.things")])]


class DownStore:
    """A store that is down until `up` is set; remembers what it took."""

    def __init__(self):
        self.up, self.taken, self.tries = False, {}, 0

    def failing(self, within=10.0):
        return not self.up and self.tries > 0

    def set_many(self, values, ttl):
        self.tries += 1
        if not self.up:
            raise StoreUnavailable("down")
        self.taken.update(values)


def test_a_bump_the_store_refuses_is_written_once_it_is_back():
    store = DownStore()
    writer = GenerationWriter(store, retry_seconds=0.05)
    writer.write({"gen:1:a": "t1"})
    assert store.tries == 1 and writer.pending == 1
    writer.write({"gen:1:b": "t2"})  # the store just failed: not tried again by the request
    assert store.tries == 1 and writer.pending == 2
    time.sleep(0.2)
    assert store.taken == {} and writer.pending == 2
    store.up = True
    deadline = time.monotonic() + 5
    while writer.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.taken == {"gen:1:a": "t1", "gen:1:b": "t2"} and writer.pending == 0
    writer.write({"gen:1:a": "t3"})  # back to writing at once
    assert store.taken["gen:1:a"] == "t3"


def test_validity_is_the_earliest_declared_deadline():
    valid_until(0)  # outside computing(): nobody listens, nothing breaks
    with computing() as validity:
        assert validity.seconds(300) == 300
        valid_until(time.time() + 50)
        valid_until(time.time() + 100)
        assert 49 < validity.seconds(300) <= 50
    with computing() as outer:
        with computing() as inner:
            valid_until(0)
        assert inner.seconds(300) <= 0 and outer.until == math.inf


def test_the_cache_keeps_an_answer_no_longer_than_asked():
    cache = AnswerCache(max_entries=4, max_age=300)
    cache.put("never", 1, max_age=0)
    cache.put("briefly", 2, max_age=0.05)
    cache.put("long", 3, max_age=10_000)  # capped by the cache's own max_age
    assert cache.get("never") is None
    assert cache.get("briefly") == 2 and cache.get("long") == 3
    time.sleep(0.06)
    assert cache.get("briefly") is None and cache.get("long") == 3
