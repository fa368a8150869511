"""Rotating app.secret_key (issue 34, item 2), with real `learnplat` processes on the current
backend: a server started with a secret that cannot decrypt the schools' keys refuses to start
(it used to start and answer every login 500); with the old secret in app.old_secret_keys
logins and earlier tokens keep working; `learnplat secrets reencrypt` rewrites the keys, after
which the old secret can go; key commands run with a wrong secret refuse and change nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from corehelpers import CLI, cli_env, free_port, run_cli
from cryptography.fernet import InvalidToken

from learnplat.secret_keys import SecretBox
from learnplat.settings import ConfigError, load_settings
from learnplat.testing import wait_until_serving

SECRET_A = "secret-A-of-at-least-32-characters-aaaa"
SECRET_B = "secret-B-of-at-least-32-characters-bbbb"
WRONG = "a-wrong-secret-of-32-characters-xxxxxxxx"
PASSWORD = "correct horse battery"
HEADERS = {"X-Tenant": "acme"}


@contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """`learnplat serve` (one gunicorn worker, no queue worker) until the block ends."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                            env={**env, "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, proc, lambda: proc.stdout.read() if proc.stdout else "")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def refused_to_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`learnplat serve`, which must exit by itself; a server that comes up is stopped after
    30 s and reported as such (what happened before the fix)."""
    port = free_port()
    try:
        return subprocess.run([*CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers",
                               "1"], env={**env, "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false"},
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        # Stopped by subprocess.run; the gunicorn workers follow their master.
        pytest.fail("learnplat serve started with a secret that cannot decrypt the keys")


def login(base: str, email: str = "boss@acme.example") -> requests.Response:
    return requests.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD},
                         headers=HEADERS, timeout=10)


def profile(base: str, token: str) -> int:
    return requests.get(f"{base}/auth/profile", timeout=10,
                        headers={**HEADERS, "Authorization": f"Bearer {token}"}).status_code


def keys_at_rest(env: dict[str, str]) -> list[dict[str, object]]:
    r = run_cli(["secrets", "check", "--json"], env)
    return json.loads(r.stdout)["items"]


def with_secret(env: dict[str, str], secret: str, *old: str) -> dict[str, str]:
    out = {**env, "LEARNPLAT_APP_SECRET_KEY": secret}
    out.pop("LEARNPLAT_APP_OLD_SECRET_KEYS", None)
    if old:
        out["LEARNPLAT_APP_OLD_SECRET_KEYS"] = json.dumps(list(old))
    return out


@pytest.mark.e2e
def test_rotating_the_secret_with_real_processes(tmp_path: Path, fresh_db: Any) -> None:
    env_a = with_secret(cli_env(tmp_path, fresh_db), SECRET_A)
    assert run_cli(["migrate"], env_a).returncode == 0
    r = run_cli(["tenants", "create", "acme", "--name", "Acme School", "--admin-email",
                 "boss@acme.example", "--admin-password", PASSWORD], env_a)
    assert r.returncode == 0, r.stderr
    r = run_cli(["certificates", "rotate-key", "--tenant", "acme"], env_a)  # a credential key
    assert r.returncode == 0, r.stderr

    # Secret A: the school logs in (its token-signing key is made then, under A).
    with served(env_a) as base:
        first = login(base)
        assert first.status_code == 200, first.text
        token_a = first.json()["access_token"]
        assert profile(base, token_a) == 200

    # (c) A key command run with a wrong secret refuses and changes nothing.
    before = keys_at_rest(env_a)
    for args in (["keys", "rotate", "--tenant", "acme"],
                 ["certificates", "rotate-key", "--tenant", "acme"]):
        r = run_cli(args, with_secret(env_a, WRONG))
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error: app.secret_key cannot decrypt the keys of school "
                                    "'acme'") and "app.old_secret_keys" in r.stderr, r.stderr
    assert keys_at_rest(env_a) == before
    # (Kinds the school holds none of, a webhook's or an LRS's secret, are listed with 0.)
    assert {(k["data"], k["total"], k["undecryptable"]) for k in before if k["total"]} == {
        ("token-signing keys", 1, 0), ("credential-signing keys", 1, 0)}

    # (a) Secret B alone cannot decrypt the keys made under A: serve refuses, saying what
    # to set (before: it started and every login answered 500, InvalidToken in the log).
    r = refused_to_serve(with_secret(env_a, SECRET_B))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr == (
        "error: app.secret_key cannot decrypt the keys of school 'acme' (credential-signing "
        "keys: 1 of 1, token-signing keys: 1 of 1): set app.secret_key "
        "(LEARNPLAT_APP_SECRET_KEY) to the secret they were made with, or list that secret in "
        "app.old_secret_keys (LEARNPLAT_APP_OLD_SECRET_KEYS)\n"), r.stderr
    r = run_cli(["worker"], with_secret(env_a, SECRET_B), timeout=30)
    assert r.returncode == 1 and "cannot decrypt" in r.stderr, r.stderr

    # (b) B with A still accepted: logins work, the token issued under A still verifies.
    env_overlap = with_secret(env_a, SECRET_B, SECRET_A)
    with served(env_overlap) as base:
        assert login(base).status_code == 200
        assert profile(base, token_a) == 200
    check = run_cli(["secrets", "check"], env_overlap)
    assert check.returncode == 0, check.stderr
    assert "2 key(s) at rest; 2 need app.old_secret_keys" in check.stdout, check.stdout

    r = run_cli(["secrets", "reencrypt"], env_overlap)
    assert r.returncode == 0, r.stderr
    assert "acme\ttoken-signing keys\t1 re-encrypted" in r.stdout, r.stdout
    assert "2 of 2 key(s) re-encrypted with app.secret_key" in r.stdout, r.stdout
    again = run_cli(["secrets", "reencrypt", "--json"], env_overlap)  # idempotent
    assert json.loads(again.stdout)["reencrypted"] == 0, again.stdout

    # B alone now: logins work, the token from the start still verifies (its key's public
    # half is not encrypted), and A alone is the wrong secret from now on.
    env_b = with_secret(env_a, SECRET_B)
    with served(env_b) as base:
        second = login(base)
        assert second.status_code == 200, second.text
        assert profile(base, token_a) == 200
        assert profile(base, second.json()["access_token"]) == 200
    r = run_cli(["keys", "rotate", "--tenant", "acme"], env_b)
    assert r.returncode == 0 and r.stdout.startswith("new signing key "), r.stderr
    r = run_cli(["keys", "rotate", "--tenant", "acme"], env_a)
    assert r.returncode == 1 and "cannot decrypt" in r.stderr, r.stderr


def test_old_secrets_decrypt_and_the_current_one_encrypts() -> None:
    old = SecretBox([SECRET_A.encode()], info=b"test")
    token = old.encrypt(b"private key")
    rotated = SecretBox([SECRET_B.encode(), SECRET_A.encode()], info=b"test")
    assert rotated.decrypt(token) == b"private key"
    assert rotated.state(token) == "old"
    fresh = rotated.reencrypt(token)
    assert fresh is not None and rotated.state(fresh) == "current"
    assert rotated.reencrypt(fresh) is None
    with pytest.raises(InvalidToken):
        SecretBox([SECRET_B.encode()], info=b"test").decrypt(token)
    assert SecretBox([SECRET_B.encode()], info=b"test").state(token) == "undecryptable"
    # Another purpose (info) never decrypts this one's tokens.
    assert SecretBox([SECRET_A.encode()], info=b"other").state(token) == "undecryptable"


@pytest.mark.parametrize("raw", [json.dumps([SECRET_A, SECRET_B]), f"{SECRET_A}, {SECRET_B}"])
def test_old_secret_keys_from_the_environment(tmp_path: Path, raw: str) -> None:
    settings = load_settings(environ={"LEARNPLAT_APP_OLD_SECRET_KEYS": raw}, home=tmp_path)
    assert settings.app.old_secret_keys == (SECRET_A, SECRET_B)
    with pytest.raises(ConfigError, match=r"app\.old_secret_keys"):
        load_settings(environ={"LEARNPLAT_APP_OLD_SECRET_KEYS": "short"}, home=tmp_path)


def test_urls_signed_under_an_old_secret_verify_during_the_overlap() -> None:
    """Signed media URLs (and, the same way, certificate download links and upload tokens)
    made just before the rotation keep working while the old secret is listed."""
    from learnplat_media import signing

    from learnplat.plugin import PermissionDenied

    expires = int(time.time()) + 60
    sig = signing.signature(SECRET_A.encode(), 1, 2, expires, 3)
    signing.verify((SECRET_B.encode(), SECRET_A.encode()), 1, 2, expires, 3, sig)
    with pytest.raises(PermissionDenied):
        signing.verify((SECRET_B.encode(),), 1, 2, expires, 3, sig)
