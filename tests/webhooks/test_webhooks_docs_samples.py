"""The signature samples of docs/webhooks.md ("Verifying a signature"), run as a school's
developer would run them: every ```python and ```js block of that section, as written, in a
process of its own (Python: this interpreter, which has `standardwebhooks`; JavaScript: node),
given a real signed delivery captured by a receiver on loopback. Each must accept it, and
reject it with one byte of the body changed, or under another secret."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from receivers import Received, Receiver
from webhookhelpers import Hooks, WbGraded, record

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
RUNNERS = {"python": [sys.executable], "js": ["node"]}


def samples() -> list[tuple[str, str]]:
    """(language, code) of each python / js block of the section, in order."""
    text = DOC.read_text()
    start = text.index("## Verifying a signature")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    return re.findall(r"^```(python|js)\n(.*?)^```", section, flags=re.S | re.M)


def run(lang: str, path: Path, secret: str, got: Received, body: bytes
        ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "WEBHOOK_SECRET": secret, "WEBHOOK_ID": got.headers["webhook-id"],
           "WEBHOOK_TIMESTAMP": got.headers["webhook-timestamp"],
           "WEBHOOK_SIGNATURE": got.headers["webhook-signature"]}
    return subprocess.run([*RUNNERS[lang], str(path)], input=body, env=env,
                          capture_output=True, timeout=60)


def test_the_docs_have_the_samples():
    assert [lang for lang, _code in samples()].count("python") >= 1
    assert [lang for lang, _code in samples()].count("js") >= 1


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_each_sample_verifies_a_real_delivery_and_rejects_a_forgery(hooks: Hooks,
                                                                     receiver: Receiver,
                                                                     tmp_path: Path):
    created = hooks.create(receiver.url, ["wbtest.graded.v1"])
    secret = created["secret"]
    receiver.secrets.append(secret)
    record(hooks.runtime, hooks.tenant, WbGraded(course_id=42, user_id=1001, score=0.85))
    [got] = receiver.wait_for(1)
    assert got.verified, got.error  # the reference library agrees it is genuine
    tampered = got.body.replace(b"1001", b"1002")
    assert tampered != got.body
    other = hooks.create(receiver.url, ["wbtest.graded.v1"])["secret"]  # another endpoint's
    for i, (lang, code) in enumerate(samples()):
        path = tmp_path / f"sample{i}.{'py' if lang == 'python' else 'js'}"
        path.write_text(code)
        ok = run(lang, path, secret, got, got.body)
        assert ok.returncode == 0, (lang, i, ok.stdout, ok.stderr)
        assert ok.stdout.decode().startswith("verified"), (lang, i, ok.stdout)
        for body, key in ((tampered, secret), (got.body, other)):
            refused = run(lang, path, key, got, body)
            assert refused.returncode == 1, (lang, i, refused.stdout, refused.stderr)
            assert refused.stdout.decode().startswith("not verified"), (lang, i, refused.stdout)
