"""Logging for learnplat processes: <home>/config/logging.toml (dictConfig) or the packaged
default, plus the request id.

Every log line written while a request is handled carries its X-Request-Id, so a 500 answer's
``request_id`` finds the traceback in the log, and the client's address (through trusted
proxies, see learnplat/http/client_address.py).
"""

from __future__ import annotations

import logging
import logging.config
import tomllib
from pathlib import Path
from typing import Any


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` and ``record.client_addr`` (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .http.middleware import client_addr_var, request_id_var

        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "client_addr"):
            record.client_addr = client_addr_var.get()
        return True


# The packaged default, so an installed learnplat (no checkout, no config/logging.toml) logs
# request ids too; the checkout's config/logging.toml is this same configuration.
DEFAULT_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {
        "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(client_addr)s] "
                  "%(message)s"}},
    "filters": {"request_id": {"()": "learnplat.logs.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["request_id"]}},
    "root": {"level": "INFO", "handlers": ["console"]},
}


def configure_logging(home: str | Path) -> None:
    """Apply config/logging.toml under `home`; the packaged default when it is missing."""
    path = Path(home) / "config" / "logging.toml"
    if path.exists():
        with path.open("rb") as fh:
            logging.config.dictConfig(tomllib.load(fh))
    else:
        logging.config.dictConfig(DEFAULT_LOGGING)
