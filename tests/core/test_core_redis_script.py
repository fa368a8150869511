"""RedisScript: a hot path's Lua script on the thread's own connection (learnplat.plugin)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis

from learnplat import testing
from learnplat.plugin import RedisScript

pytestmark = pytest.mark.skipif(not testing.test_redis_url(),
                                reason="needs LEARNPLAT_TEST_REDIS_URL")

_INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def client():
    c = redis.Redis.from_url(testing.test_redis_url())
    yield c
    c.close()


@pytest.fixture
def key(client):
    k = f"lptest-script-{uuid.uuid4().hex[:8]}"
    yield k
    client.delete(k)


def test_runs_the_script_and_answers_its_value(client, key):
    incr = RedisScript(client, _INCR)
    assert incr([key], [2]) == 2
    assert incr([key], [3]) == 5
    assert int(client.get(key)) == 5


def test_reloads_a_script_redis_has_forgotten(client, key):
    incr = RedisScript(client, _INCR)
    assert incr([key], [1]) == 1
    client.script_flush()
    assert incr([key], [1]) == 2


def test_the_scripts_error_is_redis_pys_and_the_connection_stays_usable(client, key):
    fail = RedisScript(client, "return redis.error_reply('nope')")
    incr = RedisScript(client, _INCR)
    with pytest.raises(redis.ResponseError, match="nope"):
        fail([], [])
    assert incr([key], [7]) == 7  # the same thread's connection answers the next call right


def test_each_thread_has_its_own_connection_shared_by_its_scripts(client, key):
    one, two = RedisScript(client, _INCR), RedisScript(client, "return 1")
    seen: dict[str, object] = {}

    def run(name: str) -> None:
        one([key], [1])
        two([], [])
        seen[name] = one._connection()
        assert one._connection() is two._connection()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a"] is not seen["b"]
    assert int(client.get(key)) == 2


def test_an_unreachable_redis_raises_redis_pys_connection_error():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        RedisScript(dead, _INCR)(["k"], [1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(client, key):
    incr = RedisScript(client, _INCR)
    incr([key], [1])
    parent_conn = incr._connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh connection, never the parent's socket
        try:
            ok = incr._connection() is not parent_conn and incr([key], [1]) == 2
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert incr([key], [1]) == 3


def test_a_new_pool_never_gets_a_freed_pools_connection(client, key):
    """Connections are kept per thread and pool id: a pool made where a freed one was (the same
    id) must open its own, or the script would run on the old pool's server and database."""
    first = redis.Redis.from_url(testing.test_redis_url())
    old = RedisScript(first, _INCR)._connection()
    second = redis.Redis.from_url(testing.test_redis_url())
    # what a freed pool leaves behind when the new one lands on its address: its entry
    conns = RedisScript._local.conns
    conns[id(second.connection_pool)] = conns[id(first.connection_pool)]
    fresh = RedisScript(second, _INCR)._connection()
    assert fresh is not old
    assert RedisScript(second, _INCR)([key], [1]) == 1
