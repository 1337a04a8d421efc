"""Log lines: JSON for production (one object a line, for Loki, Elasticsearch or
``journalctl -o cat | jq``), plain text for the dev shell; ``DROPLINE_LOG_FORMAT`` chooses.

Each JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
``request_id`` of the request being served (``None`` outside one: the worker, the CLI) and any
``extra={...}`` fields the caller passed. The request id lives in a context variable, set by
the HTTP floor (``web.request_ids``) for the duration of a request; this module imports
nothing of the web, so jobs and the CLI log through the same formatter.

``logging_config`` is a ``logging.config.dictConfig`` mapping: ``dropline serve`` hands it to
uvicorn (which applies it in every worker process, its own loggers included) and
``dropline worker`` applies it directly."""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["JsonFormatter", "LogFormat", "configure_logging", "logging_config", "request_id"]

LogFormat = Literal["json", "text"]

# The id of the request this task serves; None outside a request.
request_id: ContextVar[str | None] = ContextVar("dropline_request_id", default=None)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, the
    ``extra`` fields, and ``exception`` (the formatted traceback) when there is one. Values
    JSON cannot hold are written as their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The dev shell's line, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = request_id.get()
        return f"{text} [{rid}]" if rid else text


def logging_config(fmt: LogFormat, *, level: str = "INFO") -> dict[str, Any]:
    """A ``dictConfig`` mapping: every record (the root's, uvicorn's, dropline's) to stderr
    in ``fmt``. uvicorn's access log is kept (a line per request, with its request id)."""
    formatter = {"()": JsonFormatter if fmt == "json" else TextFormatter}
    handler = {"class": "logging.StreamHandler", "formatter": "default",
               "stream": "ext://sys.stderr"}
    quiet = {"handlers": [], "propagate": True}  # uvicorn's loggers go through the root's
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        # uvicorn's "trace" is finer than the standard library knows: DEBUG here.
        "root": {"handlers": ["default"],
                 "level": "DEBUG" if level.lower() == "trace" else level.upper()},
        "loggers": {"uvicorn": quiet, "uvicorn.error": quiet, "uvicorn.access": quiet},
    }


def configure_logging(fmt: LogFormat, *, level: str = "INFO") -> None:
    """Apply ``logging_config`` to this process (the worker, a script)."""
    logging.config.dictConfig(logging_config(fmt, level=level))
