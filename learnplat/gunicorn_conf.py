"""gunicorn settings for `bin/serve` / `learnplat serve` (override any with CLI flags).

Shipped inside the package (`gunicorn -c python:learnplat.gunicorn_conf`), so an installed
learnplat serves without a checkout; a home's own config/gunicorn.conf.py replaces it. Loaded
by gunicorn only, never imported by learnplat itself.

`learnplat serve` names the app to match server.worker_class (the ASGI entry under the asgi
worker, the WSGI app under gthread). With queue.embedded_worker (the default) the master
starts `learnplat worker` beside the web workers and stops it on exit, so a fresh install
needs no second command.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from typing import Any

from learnplat.settings import load_settings

_settings = load_settings()

# asgi (default): gunicorn's own asyncio worker runs learnplat.http.asgi, REST through a2wsgi
# in server.threads threads plus WebSockets (decision 0011); gthread: the WSGI app alone.
worker_class = _settings.server.worker_class
if worker_class == "gthread":
    threads = _settings.server.threads
else:
    worker_connections = _settings.server.connections
# The master and its workers log through the home's config/logging.toml, gunicorn's own lines
# included; access lines get the client address and school the app resolved (learnplat.logs,
# learnplat.http.asgi).
logger_class = "learnplat.http.asgi.AccessLogger"
timeout = _settings.server.timeout
keepalive = 5
# One line per request unless logging.access_log is off (app.debug, as before, turns it on).
# "-": through the logging configuration (gunicorn.access), not gunicorn's own stdout handler.
accesslog = "-" if _settings.logging.access_log or _settings.app.debug else None
# The client is the address the app resolved through server.trusted_proxies (set by the
# request middleware), not the proxy that holds the connection; the time is the formatter's.
# Then the request line, status, bytes, duration, school ("-": none), request id, user agent.
access_log_format = ('%({learnplat.client_addr}e)s "%(r)s" %(s)s %(b)s %(M)sms '
                     '%({learnplat.tenant}e)s %({x-request-id}o)s "%(a)s"')
# The same proxies may tell gunicorn the request came over https (X-Forwarded-Proto), so links
# derived from the request use the right scheme. Without any, gunicorn's default (loopback).
if _proxies := [p for p in _settings.server.trusted_proxies if p.lower() != "unix"]:
    forwarded_allow_ips = ",".join(_proxies)
errorlog = "-"
preload_app = False

_worker: subprocess.Popen[bytes] | None = None


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if the master dies without running on_exit (SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def when_ready(server: Any) -> None:
    global _worker
    if _settings.queue.embedded_worker and not _settings.queue.immediate:
        # -P: the current directory stays off sys.path (see learnplat.cli.gunicorn_main).
        _worker = subprocess.Popen([sys.executable, "-P", "-m", "learnplat.cli", "worker"],
                                   env=dict(os.environ), preexec_fn=_die_with_parent)
        server.log.info("started embedded queue worker (pid %s)", _worker.pid)


def post_fork(server: Any, worker: Any) -> None:
    # Each web worker logs as the queue worker does: the home's config/logging.toml (or the
    # packaged default), root at INFO on stderr, so plugins' logging.getLogger(__name__) lines
    # are not lost. The master configured it already (AccessLogger); again here, so that a
    # home whose gunicorn.conf.py names another logger_class still gets it in its workers.
    from learnplat.logs import configure_gunicorn_logging

    configure_gunicorn_logging(_settings.home, _settings.logging.repeat_seconds)


def post_worker_init(worker: Any) -> None:
    # The app is loaded: freeze what exists now (modules, plugins, models, the registry) out
    # of the garbage collector's reach. A full collection otherwise walks those ~120,000
    # objects and stopped every request of the worker for 70-110 ms several times a minute
    # under load, which was most of the p99; frozen, it walks a few thousand (7-16 ms).
    # They are long-lived anyway; what is created later is collected as usual.
    gc.collect()
    gc.freeze()
    # asgi: when this worker is told to stop, its WebSockets are closed with 1001 at once (the
    # clients reconnect to another process) instead of holding it for graceful_timeout.
    if worker_class == "asgi":
        from learnplat.http.asgi import watch_worker

        watch_worker(worker)


def on_exit(server: Any) -> None:
    if _worker is not None and _worker.poll() is None:
        _worker.send_signal(signal.SIGINT)
        try:
            _worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _worker.kill()
