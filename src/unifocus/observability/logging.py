"""JSON-lines logs via structlog, for our own events and the standard library's alike: the
service's, uvicorn's (start and stop, a worker that died, a malformed request, an error the
app did not handle) and alembic's (the migrations `serve` runs at start).

What never goes into a log: tokens, secrets, request bodies. Access lines carry ids only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_configured = False

# uvicorn's loggers. Its default log_config gives them a plain-text handler of their own on
# stderr (and no propagation): `uvicorn_log_config` takes it away, so their records reach the
# root's JSON handler like any library's.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
# Set on an exception the app's own handler logged (errors.py `on_unexpected`, with the
# request id). Starlette re-raises it after the 500 is sent, and uvicorn logs it a second time
# ("Exception in ASGI application", the same traceback without the request id): that copy is
# dropped (`LoggedOnce`).
LOGGED = "_unifocus_logged"

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _orjson_text(obj: object, **_: object) -> str:
    # orjson is several times faster than json.dumps: one access line per request adds up.
    return orjson.dumps(obj, default=str).decode()


def mark_logged(exc: BaseException) -> None:
    """Say that `exc` and its traceback are in the log already."""
    try:
        setattr(exc, LOGGED, True)
    except (AttributeError, TypeError):  # an exception type with __slots__: logged twice, not lost
        pass


class LoggedOnce(logging.Filter):
    """Drops a record whose exception is marked `mark_logged`; every other record passes
    (an error the app did not log is uvicorn's to report)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, LOGGED, False)


def handler(json: bool = True) -> logging.Handler:
    """The one handler: every line on stdout, rendered by structlog (JSON, or readable text
    with UNIFOCUS_LOG_JSON=false)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text) if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    return stream


def uvicorn_log_config(level: str = "INFO", json: bool = True) -> dict[str, Any]:
    """uvicorn's `log_config`: applied by uvicorn in its supervisor and again in each worker
    it spawns, before the worker imports the app, so a worker's first lines (and a failure to
    load the app) are JSON too. The root gets our handler; uvicorn's loggers get none and
    propagate to it; uvicorn.error drops the duplicate of an error the app logged."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"logged_once": {"()": f"{__name__}.LoggedOnce"}},
        "handlers": {"json": {"()": f"{__name__}.handler", "json": json}},
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
            "uvicorn.error": {"handlers": [], "propagate": True, "filters": ["logged_once"]},
            # access_log=False: our middleware writes the access line (with the request id)
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # A log line must never break a request or shutdown (e.g. stdout closed at exit).
    logging.raiseExceptions = False
    root = logging.getLogger()
    root.handlers[:] = [handler(json)]
    root.setLevel(level.upper())
    # The same routing as uvicorn_log_config, for a process where uvicorn did not apply it
    # (the app served by another ASGI server, tests): harmless where it did.
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, LoggedOnce) for f in error_log.filters):
        error_log.addFilter(LoggedOnce())
    logging.getLogger("uvicorn.access").disabled = True


def configured() -> bool:
    """Whether this process logs through `configure_logging` (`serve`: its fatal errors are
    JSON lines then, cli.py `main`)."""
    return _configured
