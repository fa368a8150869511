"""Logging for every learnplat process: <home>/config/logging.toml (dictConfig) or the packaged
default, the same for `learnplat serve` (gunicorn's master and workers), `learnplat worker` and
the other commands (docs/deployment.md, "Logs").

Every log line written while a request is handled carries its X-Request-Id, the client's
address (through trusted proxies, see learnplat/client_address.py) and the school, so a
500 answer's ``request_id`` finds the traceback in the log. Two filters keep the log readable:
an outage of Redis or PostgreSQL is logged once per failure kind and interval (RepeatFilter),
and huey's lines for periodic housekeeping tasks are DEBUG (PeriodicTaskFilter).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import logging.config
import math
import os
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``, ``record.client_addr`` and ``record.tenant`` (the school's
    slug): ``-`` outside a request or a school."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .http.middleware import client_addr_var, request_id_var
        from .tenancy import _current

        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "client_addr"):
            record.client_addr = client_addr_var.get()
        if not hasattr(record, "tenant"):
            tenant = _current.get()
            record.tenant = tenant.slug if tenant is not None else "-"
        return True


# -- an idle worker is quiet ---------------------------------------------------------------

# huey's lines about running a task (huey.api: "Executing %s", "%s executed in %0.3fs") and
# about its scheduler queueing a periodic one (huey.consumer: "Enqueueing periodic task %s.").
_HUEY_TASK_LINES = frozenset(("Executing %s", "%s executed in %0.3fs"))
_HUEY_PERIODIC_LINE = "Enqueueing periodic task %s."


class PeriodicTaskFilter(logging.Filter):
    """huey's INFO lines for periodic tasks become DEBUG: five housekeeping tasks a minute wrote
    15 lines a minute on an idle worker. A periodic task that does something logs it itself;
    `[loggers.huey] level = "DEBUG"` in logging.toml shows these lines again."""

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_learnplat_periodic", None)
        if decided is not None:  # a second handler with this filter sees the demoted record
            return bool(decided)
        if record.levelno != logging.INFO or not record.name.startswith("huey"):
            return True
        if not _is_periodic_line(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The logger let the record through at INFO; at DEBUG only if it is enabled for it.
        shown = logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        record._learnplat_periodic = shown
        return shown


def _is_periodic_line(record: logging.LogRecord) -> bool:
    if record.msg == _HUEY_PERIODIC_LINE:
        return True
    if record.msg not in _HUEY_TASK_LINES or not isinstance(record.args, tuple) \
            or not record.args:
        return False
    from huey.api import PeriodicTask

    return isinstance(record.args[0], PeriodicTask)


# -- an outage is a few lines, not thousands -------------------------------------------------

# How long RepeatFilter holds back repeats; configure_logging sets it from
# logging.repeat_seconds, a filter given `interval` in logging.toml keeps its own.
_repeat_seconds = 60.0


@functools.cache
def dependency_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean a backing service failed (not a defect): a database, the
    key-value store, the queue's Redis, the object storage, the network under them."""
    import peewee
    import redis
    from playhouse.pool import MaxConnectionsExceeded

    from .kv import StoreUnavailable
    from .storage import StorageUnavailable

    kinds: list[type[BaseException]] = [
        ConnectionError, TimeoutError, peewee.OperationalError, peewee.InterfaceError,
        MaxConnectionsExceeded, redis.ConnectionError, redis.TimeoutError, StoreUnavailable,
        StorageUnavailable]
    with contextlib.suppress(ImportError):
        import psycopg2

        kinds.append(psycopg2.OperationalError)
    return tuple(kinds)


def failure_kind(record: logging.LogRecord) -> type[BaseException] | None:
    """The type of the exception a record reports (its exc_info, else an exception among its
    arguments, as in ``log.warning("... %s", exc)``) when that exception, or one it was raised
    from, is a dependency failure; None for anything else (a defect is never held back: its
    request id must find its traceback)."""
    exc: BaseException | None = None
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
    elif isinstance(record.args, tuple):
        exc = next((a for a in record.args if isinstance(a, BaseException)), None)
    if exc is None:
        return None
    kinds = dependency_errors()
    seen: BaseException | None = exc
    for _ in range(10):  # the chain of causes, bounded against cycles
        if seen is None:
            break
        if isinstance(seen, kinds):
            return type(exc)
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass
class _Repeats:
    """One failure kind within its current interval."""

    until: float  # time.monotonic() at which the interval ends
    count: int = 0  # held back in this interval
    last: logging.LogRecord | None = None  # the last one held back, for the summary


class RepeatFilter(logging.Filter):
    """During an outage of Redis or PostgreSQL, one line per failure kind per interval.

    A kind is (logger, exception type, message template) of a record about a dependency failure
    (`failure_kind`). The first of a kind passes with its traceback; the next ones within
    `interval` seconds are held back and counted, and when the interval ends one summary line
    says "... (repeated N times in the last 60 s: ExceptionType: message)". An interval without
    any ends the kind: its next failure is a first again, traceback included; what is held back
    when the process stops is written then. A 10 s Redis outage under 124 requests had written
    50 tracebacks (2,700 lines) from the web and queue workers; with this filter, 2.

    Set on handlers (logging.toml); several handlers share one decision per record.
    """

    def __init__(self, name: str = "", interval: float | None = None):
        super().__init__(name)
        self._interval = interval
        self._init_state()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, str, str], _Repeats] = {}
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._at_exit = getattr(self, "_at_exit", False)  # registered once, forks included

    @property
    def interval(self) -> float:
        return self._interval if self._interval is not None else _repeat_seconds

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_learnplat_repeat", None)
        if decided is not None:
            return bool(decided)
        kind = failure_kind(record)
        passed = True if kind is None else self._first(record, kind)
        record._learnplat_repeat = passed
        return passed

    def _first(self, record: logging.LogRecord, kind: type[BaseException]) -> bool:
        if self._pid != os.getpid():
            # A forked child (gunicorn's workers): the parent's lock may have been held at the
            # fork and its flusher thread did not come along.
            self._init_state()
        key = (record.name, kind.__qualname__, str(record.msg))
        now = time.monotonic()
        with self._lock:
            repeats = self._kinds.get(key)
            if repeats is None:
                self._kinds[key] = _Repeats(until=now + self.interval)
                self._start_flusher()
                return True
            repeats.count += 1
            repeats.last = record
            return False

    def _start_flusher(self) -> None:
        if not self._at_exit:
            # What the last interval held back is written when the process stops (a restart
            # during an outage), not lost with the flusher thread.
            atexit.register(self.flush, math.inf)
            self._at_exit = True
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_forever, daemon=True,
                                             name="learnplat-log-repeats")
            self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            with self._lock:
                if not self._kinds:
                    self._flusher = None
                    return
                wait = min(r.until for r in self._kinds.values()) - time.monotonic()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
            self.flush()

    def flush(self, now: float | None = None) -> None:
        """Write the summaries of the intervals that have ended (all of them when `now` is
        +inf: at exit) and forget the kinds that stayed quiet for a whole interval."""
        if self._pid != os.getpid():
            return  # the parent's counts, inherited through a fork: the parent writes them
        now = time.monotonic() if now is None else now
        due: list[tuple[logging.LogRecord, int]] = []
        with self._lock:
            for key, repeats in list(self._kinds.items()):
                if repeats.until > now:
                    continue
                if repeats.count and repeats.last is not None:
                    due.append((repeats.last, repeats.count))
                    repeats.until, repeats.count, repeats.last = now + self.interval, 0, None
                else:
                    del self._kinds[key]
        for record, count in due:  # outside the lock: the summary passes through this filter
            logging.getLogger(record.name).handle(self._summary(record, count))

    def _summary(self, record: logging.LogRecord, count: int) -> logging.LogRecord:
        what = ""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            what = f": {type(exc).__name__}: {exc}"
        times = "once" if count == 1 else f"{count} times"
        summary = logging.LogRecord(
            record.name, record.levelno, record.pathname, record.lineno,
            "%s (repeated %s in the last %g s%s)",
            (record.getMessage(), times, self.interval, what), None, record.funcName)
        # Written by the flusher, outside any request: the request fields are the last one's.
        for field in ("request_id", "client_addr", "tenant"):
            if hasattr(record, field):
                setattr(summary, field, getattr(record, field))
        summary._learnplat_repeat = True
        return summary


# -- configuration -------------------------------------------------------------------------

# The packaged default, so an installed learnplat (no checkout, no config/logging.toml) logs
# the same way; the checkout's config/logging.toml is this same configuration.
DEFAULT_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s "
                            "[%(request_id)s %(client_addr)s %(tenant)s] %(message)s"},
        "access": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "request_id": {"()": "learnplat.logs.RequestIdFilter"},
        "periodic_tasks": {"()": "learnplat.logs.PeriodicTaskFilter"},
        "repeats": {"()": "learnplat.logs.RepeatFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain",
                    "filters": ["request_id", "periodic_tasks", "repeats"]},
        "access": {"class": "logging.StreamHandler", "formatter": "access"},
    },
    "loggers": {
        "gunicorn.access": {"handlers": ["access"], "propagate": False},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
}


def logging_config(home: str | Path) -> dict[str, Any]:
    """config/logging.toml under `home` as a dictConfig; the packaged default when missing."""
    path = Path(home) / "config" / "logging.toml"
    if path.exists():
        with path.open("rb") as fh:
            return tomllib.load(fh)
    return DEFAULT_LOGGING


def configure_logging(home: str | Path, repeat_seconds: float | None = None) -> dict[str, Any]:
    """Apply config/logging.toml under `home` (or the packaged default); `repeat_seconds` is
    logging.repeat_seconds, RepeatFilter's interval. Returns the configuration applied."""
    global _repeat_seconds
    if repeat_seconds is not None:
        _repeat_seconds = float(repeat_seconds)
    config = logging_config(home)
    logging.config.dictConfig(config)
    return config


def configure_command_logging() -> None:
    """A `learnplat` command run from the shell (learnplat.cli.main): the home's configuration,
    formatted like the services' lines, showing warnings and errors only (the commands that
    log more, `worker` and `tasks run`, configure INFO themselves). A logging.toml that cannot
    be applied is one error line, as a bad setting is."""
    from .settings import resolve_home

    home, _ = resolve_home()
    try:
        configure_logging(home)
    except (ValueError, TypeError, AttributeError, ImportError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"error: {Path(home) / 'config' / 'logging.toml'}: {exc}") from None
    root = logging.getLogger()
    root.setLevel(max(root.level, logging.WARNING))


_GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def configure_gunicorn_logging(home: str | Path, repeat_seconds: float | None = None) -> None:
    """`configure_logging` in gunicorn's master or a worker, gunicorn's own loggers included.

    gunicorn gives gunicorn.error and gunicorn.access stream handlers of its own (its format,
    no request id, access lines on stdout) and stops them propagating. Those handlers are
    dropped; a log file named with --error-logfile / --access-logfile stays; a logger the
    configuration names keeps what it says, the others propagate to the root's handlers."""
    files = {name: [h for h in logging.getLogger(name).handlers
                    if isinstance(h, logging.FileHandler)] for name in _GUNICORN_LOGGERS}
    config = configure_logging(home, repeat_seconds)
    named = config.get("loggers", {})
    for name in _GUNICORN_LOGGERS:
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if getattr(handler, "_gunicorn", False) \
                    and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        for handler in files[name]:  # dictConfig dropped them from the loggers it names
            if handler not in logger.handlers:
                logger.addHandler(handler)
        if name not in named:
            logger.propagate = True


@contextlib.contextmanager
def logging_configured(home: str | Path, level: int | None = None,
                       repeat_seconds: float | None = None) -> Iterator[None]:
    """`configure_logging` for the length of one command, then the loggers as they were: a
    command invoked in-process (tests, CliRunner) must not leave a handler writing to a stream
    that is closed once it returns. `level`: the root's level instead of the configuration's
    (commands other than serve, worker and `tasks run` show warnings and errors only)."""
    global _repeat_seconds
    config = logging_config(home)
    names = ["", *config.get("loggers", {})]
    saved = {name: _logger_state(logging.getLogger(name or None)) for name in names}
    saved_repeat_seconds = _repeat_seconds  # set by configure_logging, process-wide
    configure_logging(home, repeat_seconds)
    if level is not None:
        logging.getLogger().setLevel(level)
    try:
        yield
    finally:
        for name, state in saved.items():
            logger = logging.getLogger(name or None)
            for handler in logger.handlers[:]:
                if handler not in state[0]:
                    handler.flush()
                    logger.removeHandler(handler)
            for handler in state[0]:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            logger.setLevel(state[1])
            logger.propagate, logger.disabled = state[2], state[3]
        _repeat_seconds = saved_repeat_seconds


def _logger_state(logger: logging.Logger) -> tuple[list[logging.Handler], int, bool, bool]:
    return logger.handlers[:], logger.level, logger.propagate, logger.disabled
