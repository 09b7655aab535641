"""`make run` (= `smsgateway demo`): the curl sessions it prints, pasted into a shell as
printed: the native one registers, logs in, checks the link, sends, and sees the
receipt; the one-shot one makes an OAuth client, gets a token and sends (200)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gwproc import clean_env, free_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def json_objects(text: str) -> list[Any]:
    """The JSON answers `curl -s` printed back to back (no newline between them)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        value, i = decoder.raw_decode(text, i)
        out.append(value)
    return out


def bash(script: str) -> str:
    done = subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_the_printed_curl_session_works_as_pasted(tmp_path: Path) -> None:
    rest, grpc, smsc = free_port(), free_port(), _free_port_pair()
    env = clean_env(
        SMSGATEWAY_SERVER_REST_PORT=str(rest),
        SMSGATEWAY_SERVER_GRPC_PORT=str(grpc),
        SMSGATEWAY_AUTH_ARGON2_TIME_COST="1",
        SMSGATEWAY_AUTH_ARGON2_MEMORY_COST="8",
        PYTHONUNBUFFERED="1",
    )
    errors = (tmp_path / "demo.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "demo", "--smsc-port", str(smsc)],
        cwd=tmp_path,  # the data directory goes here, as ./data
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            printed.append(line)
            if "Press Ctrl-C to stop." in line or time.monotonic() > deadline:
                break
        text = "".join(printed)
        why = text + (tmp_path / "demo.err").read_text()[-3000:]  # a crash says why here
        assert f"http://127.0.0.1:{rest}" in text and f"127.0.0.1:{smsc}" in text, why
        session = text.split("Try, in another shell:", 1)[1].split("Press Ctrl-C", 1)[0]
        before_info, info = session.split("# then, with the message_id", 1)
        info = info.split("\n", 1)[1]  # the rest of that comment line

        answers, token = bash(before_info + '\necho; echo "$TOKEN"').rstrip("\n").rsplit("\n", 1)
        registered, checked, sent = json_objects(answers)
        assert registered["app_id"] == 1 and registered["error"] == ""
        assert len(registered["app_secret"]) >= 32
        assert checked == {"persist": True, "system_id": "smscsim", "error": ""}
        assert (sent["success"], sent["status"], len(sent["sms_ids"])) == (True, "submitted", 1)

        ask = f"TOKEN={token}\n" + info.replace("<message_id>", sent["message_id"])
        status = ""
        for _ in range(50):  # the simulator sends the receipt after 0.5 s
            (answer,) = json_objects(bash(ask))
            status = answer["status"]
            if status == "delivered":
                break
            time.sleep(0.1)
        assert status == "delivered", answer
        assert answer["parts"] == {"1": "delivered"}

        oneshot = text.split("one send (200 = accepted):", 1)[1].split("Operator console:", 1)[0]
        assert bash(oneshot).strip() == "200"
        console = text.split("Operator console: ", 1)[1].split(" ", 1)[0]
        assert console == f"http://127.0.0.1:{rest}/console"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert (tmp_path / "data").is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errors.close()


def _free_port_pair() -> int:
    """A free port whose successor is free too: the demo's SMSC simulator listens on
    the port given and its control API on the next one."""
    while True:
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
