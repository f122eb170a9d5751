"""The service's logs: text lines, or one JSON object per line (`IVR_LOG_FORMAT=json`, written
by python-json-logger) for a hospital's log collector, with what a record is about in fields of
its own: `campaign_id`, `attempt_id`, `worker`, `channel` (`LogFields`).

The fields come from the task that logs. The dialer binds the campaign, the attempt and the
worker to each attempt's task, the AMI adapter the channel of the call it follows, the phone
lines the channel of their call and the campaign once known. A task starts with a copy of its
parent's fields, so the PBX adapter's records about an attempt carry its campaign without the
adapter knowing what a campaign is. Text lines leave the fields out: their messages say the
same in words. Fields hold ids, names and channels: never a token, a PIN or a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from typing import TextIO, TypedDict, Unpack

from pythonjsonlogger.json import JsonFormatter

from ivr.redact import RedactFilter

#: Text lines, as `ivr` always wrote them.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: What a service command says once on stderr whatever the verbosity ("serving on ..."): the
#: bare message as text, a record like the others as JSON.
status = logging.getLogger("ivr.status")


class LogFields(TypedDict, total=False):
    """What a record is about, as JSON fields."""

    #: The campaign id ("12").
    campaign_id: str
    #: The attempt id, also the alert call's Asterisk ChannelId (`ivr-12-3-1`).
    attempt_id: str
    #: The dialer worker's name.
    worker: str
    #: The Asterisk channel: an alert call's dial string, the channel of a phone line's call.
    channel: str


_fields: contextvars.ContextVar[LogFields] = contextvars.ContextVar("ivr_log_fields")


def bind(**fields: Unpack[LogFields]) -> None:
    """Add `fields` to what the current task logs from now on, and to the tasks it starts.
    For a task of its own (a dialer attempt, a phone line's call): it is not undone."""
    _fields.set({**_fields.get({}), **fields})


@contextlib.contextmanager
def log_fields(**fields: Unpack[LogFields]) -> Iterator[None]:
    """Add `fields` to what is logged inside the block."""
    token = _fields.set({**_fields.get({}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


class _WithFields(logging.Filter):
    """Puts the task's fields on each record (a field given with `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get({}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time, as logging's last resort does: `main()`
    may run several times in one process (tests), stderr replaced in between."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: int, fmt: str = "text") -> None:
    """Log at `level` and above to stderr, as text lines or (`fmt` "json") JSON objects."""
    handler = _Stderr()
    handler.addFilter(_WithFields())
    handler.addFilter(RedactFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                ["levelname", "name", "message"],
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
        announcer = handler
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        announcer = _Stderr()
        announcer.addFilter(RedactFilter())
        announcer.setFormatter(logging.Formatter("%(message)s"))
    # Replaces the handler of a previous call (main() may run several times in one process),
    # and only it: the root logger may hold others (a test runner's).
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    status.handlers = [announcer]
    status.propagate = False
    status.setLevel(logging.INFO)


def where(task: asyncio.Task[None]) -> str:
    """Where a task waits: the chain of coroutines down to the awaited one (innermost last),
    as `file:line (function)`. (`Task.get_stack()` gives only the outermost frame.)"""
    parts: list[str] = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            parts.append(type(awaited).__name__)
            break
        name = frame.f_code.co_filename.rsplit("/", 2)[-2:]
        parts.append(f"{'/'.join(name)}:{frame.f_lineno} ({frame.f_code.co_name})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " > ".join(parts[-5:]) or "(done)"
