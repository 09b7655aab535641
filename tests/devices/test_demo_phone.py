"""`make run` (= `smsgateway demo`) with OTP projects: it links a reference phone to a
"Demo" project and prints a send-otp / verify-otp session; pasted into a shell, the
phone's SMS (printed by the demo) carries the code that verifies."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gwproc import clean_env, free_port

pytest.importorskip("smsgateway.core.otp", reason="needs the OTP projects (/v1)")
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def bash(script: str) -> str:
    done = subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_the_demo_phone_receives_the_code_that_verifies(tmp_path: Path) -> None:
    rest, grpc, smsc = free_port(), free_port(), free_port()
    env = clean_env(
        SMSGATEWAY_SERVER_REST_PORT=str(rest),
        SMSGATEWAY_SERVER_GRPC_PORT=str(grpc),
        SMSGATEWAY_AUTH_ARGON2_TIME_COST="1",
        SMSGATEWAY_AUTH_ARGON2_MEMORY_COST="8",
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "demo", "--smsc-port", str(smsc)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        for line in proc.stdout:
            printed.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        text = "".join(printed)
        block = text.split("OTP demo:", 1)[1].split("One-shot face", 1)[0]
        before, verify = block.split("# the phone's SMS", 1)
        verify = verify.split("\n", 1)[1]
        session = before.split("In another shell:", 1)[1]
        sent = json.loads(bash(session))
        assert sent["success"] is True and sent["data"]["channel"] == "device", sent
        verification = sent["data"]["verificationId"]
        deadline = time.monotonic() + 20
        got = ""
        for line in proc.stdout:
            if line.startswith("demo phone got an SMS for +447700900123"):
                got = line
                break
            assert time.monotonic() < deadline
        found = re.search(r"\b(\d{4,10})\b", got.split(":", 1)[1])
        assert found, got
        key_line = next(ln for ln in session.splitlines() if ln.strip().startswith("KEY="))
        script = (
            key_line
            + "\n"
            + verify.replace("<verificationId>", verification).replace("<code>", found.group(1))
        )
        answer = json.loads(bash(script))
        assert answer["data"]["verified"] is True, answer
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
