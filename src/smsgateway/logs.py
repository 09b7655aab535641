"""Logs: one event per line, with whatever ids the event carries.

Two renderings of the same record: JSON (one object per line, for collectors) and
text (for a person at a terminal):

    2026-12-04T19:01:44.123Z WARNING smsgateway.smpp.session bind refused status=ESME_RINVPASWD

`format = "auto"` picks text when stderr is a terminal, JSON otherwise.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Literal

import msgspec

_encoder = msgspec.json.Encoder()
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

LogFormat = Literal["auto", "text", "json"]


def _timestamp(record: logging.LogRecord) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z"
    )


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _extras(record).items():
            event[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(event).decode()


def _value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return _encoder.encode(text).decode()  # quoted and escaped: still one line
    return text


class TextFormatter(logging.Formatter):
    """time level logger message key=value...; a traceback follows indented."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", "\\n")
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name} {message}"
        ids = " ".join(f"{k}={_value(v)}" for k, v in _extras(record).items())
        if ids:
            line += " " + ids
        if record.exc_info:
            line += "\n" + "\n".join(
                "    " + ln for ln in self.formatException(record.exc_info).splitlines()
            )
        return line


def formatter_for(fmt: LogFormat, stream: IO[str]) -> logging.Formatter:
    if fmt == "text" or (fmt == "auto" and _is_tty(stream)):
        return TextFormatter()
    return JsonFormatter()


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(fmt, sys.stderr))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
