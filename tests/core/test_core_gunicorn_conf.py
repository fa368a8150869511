"""The packaged gunicorn settings' worker hook (learnplat/gunicorn_conf.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import gc
from learnplat import gunicorn_conf
before = gc.get_freeze_count()
gunicorn_conf.post_worker_init(object())
print(before, gc.get_freeze_count())
"""


def test_a_worker_freezes_the_loaded_app_out_of_the_garbage_collectors_reach(
        tmp_path: Path) -> None:
    # gthread: the hook does only the freeze (asgi also watches the real worker's signals).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update(LEARNPLAT_HOME=str(tmp_path), LEARNPLAT_SERVER_WORKER_CLASS="gthread")
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    # the loaded modules, plugins and settings: tens of thousands of objects
    assert before == 0 and after > 10_000
