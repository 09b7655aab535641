"""Logs a person can read on a terminal, JSON for everything else: one line per event
with its time, level, logger, message and ids."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from gwproc import clean_env, free_port
from smsgateway.logs import JsonFormatter, TextFormatter, formatter_for

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) +(\S+) (.*)$")


def record(msg: str, level: int = logging.WARNING, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("smsgateway.core.channels", level, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_text_line_holds_the_event_and_its_ids() -> None:
    line = TextFormatter().format(
        record("link toggled", link_id=3, message_id="0190-ab", reason="SMSC down\nsoon")
    )
    assert "\n" not in line
    m = LINE.match(line)
    assert m is not None, line
    level, logger, rest = m.groups()
    assert (level, logger) == ("WARNING", "smsgateway.core.channels")
    assert rest == 'link toggled link_id=3 message_id=0190-ab reason="SMSC down\\nsoon"'


def test_a_traceback_follows_its_line_indented() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed", level=logging.ERROR)
        rec.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(rec).splitlines()
    assert LINE.match(first) and first.endswith(" failed")
    assert rest and all(r.startswith("    ") for r in rest)
    assert rest[-1].strip() == "ValueError: boom"


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert isinstance(formatter_for("auto", tty), TextFormatter)
            assert isinstance(formatter_for("json", tty), JsonFormatter)
    finally:
        os.close(leader)
        os.close(follower)
    pipe = io.StringIO()
    assert isinstance(formatter_for("auto", pipe), JsonFormatter)
    assert isinstance(formatter_for("text", pipe), TextFormatter)
    event = json.loads(JsonFormatter().format(record("x", link_id=1)))
    assert event["level"] == "warning" and event["link_id"] == 1


def _serve(tmp_path: Path, log_format: str | None) -> list[str]:
    """Run `smsgateway serve` with stderr on a real terminal; its lines until started."""
    port = free_port()
    section = f'[log]\nformat = "{log_format}"\n' if log_format else ""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"{section}[server]\nrest_port = {port}\ngrpc_port = 0\n"
        f'[storage]\npath = "{tmp_path / "gw.db"}"\n',
        encoding="utf-8",
    )
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "serve", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=clean_env(),
    )
    os.close(follower)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while b"gateway started" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    out += os.read(leader, 65536)
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        os.close(leader)
    lines = [ln for ln in out.decode().replace("\r", "").splitlines() if ln.strip()]
    assert any("gateway started" in ln for ln in lines), lines
    return lines


def test_the_gateway_logs_text_on_a_terminal(tmp_path: Path) -> None:
    started = next(ln for ln in _serve(tmp_path, None) if "gateway started" in ln)
    m = LINE.match(started)
    assert m is not None, started
    assert m.group(1) == "INFO" and m.group(2) == "smsgateway.runtime"
    assert "rest_port=" in m.group(3)


def test_json_when_configured_even_on_a_terminal(tmp_path: Path) -> None:
    started = next(ln for ln in _serve(tmp_path, "json") if "gateway started" in ln)
    event = json.loads(started)
    assert event["event"] == "gateway started" and event["logger"] == "smsgateway.runtime"
