"""A link that cannot work says so: configurations no SMSC can accept are refused at
start naming the key, and a bind the SMSC refuses is a warning with its status, in
check-esme's `error`, the dashboard's link rows and the console."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gwkit import ADMIN_KEY, Gateway, dead_link, eventually, link_to, make_settings
from gwproc import clean_env
from smsgateway.settings import SettingsError, load_settings


def config(tmp_path: Path, **link: str) -> Path:
    lines = [f'[storage]\npath = "{tmp_path / "gw.db"}"\n', "[[smpp.links]]", "id = 7"]
    lines += [f'{key} = "{value}"' for key, value in link.items()]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("link", "says"),
    [
        (
            {"password": "ninechars"},
            "smpp.links[7].password is 9 octets; SMPP 3.4 allows at most 8",
        ),
        (
            {"system_id": "s" * 16},
            "smpp.links[7].system_id is 16 octets; SMPP 3.4 allows at most 15",
        ),
        ({"system_type": "t" * 13}, "smpp.links[7].system_type is 13 octets"),
        ({"password": "pässwd"}, "smpp.links[7].password must be ASCII"),
        ({"interface_version": "5.0"}, "smpp.links[7].interface_version"),
        (
            {"interface_version": "3.3", "bind_mode": "transceiver"},
            "smpp.links[7].bind_mode: SMPP 3.3 has no transceiver bind",
        ),
        ({"bind_mode": "both"}, "smpp.links[0].bind_mode"),
    ],
)
def test_a_link_no_smsc_can_accept_is_refused_naming_the_key(
    tmp_path: Path, link: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(config(tmp_path, **link), env={})
    assert says in str(err.value)


def test_the_limits_themselves_are_fine(tmp_path: Path) -> None:
    settings = load_settings(
        config(tmp_path, password="8chars!!", system_id="s" * 15, system_type="t" * 12), env={}
    )
    assert settings.smpp.links[0].password == "8chars!!"


def test_serve_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    path = config(tmp_path, password="much-too-long")
    done = subprocess.run(
        [sys.executable, "-m", "smsgateway", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 2
    assert "smpp.links[7].password is 13 octets; SMPP 3.4 allows at most 8" in done.stderr


async def test_a_refused_bind_is_a_warning_and_shows_everywhere(
    tmp_path: Path, make_sim: Any, make_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smsgateway.smpp")
    sim = await make_sim(system_id="gw1", password="right")
    link = msgspec.structs.replace(link_to(sim), password="wrong")
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link]))
    user = await gw.user("ops@example.com")

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "bind refused by the SMSC" in r.getMessage()]

    records = await eventually(refusals)
    assert records[0].levelno == logging.WARNING
    assert "ESME_RINVPASWD" in records[0].getMessage()
    assert records[0].status == "ESME_RINVPASWD"  # type: ignore[attr-defined]
    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=user)
    assert r.json()["persist"] is False
    assert "ESME_RINVPASWD" in r.json()["error"]
    r = await gw.http.get("/api/v1/dashboard/smpp-links", headers=user)
    row = r.json()["data"][0]
    assert row["status"] == "CONNECTING" and "ESME_RINVPASWD" in row["last_bind_error"]
    r = await gw.http.post(
        "/console/api/login",
        json={"admin_key": ADMIN_KEY},
        headers={"Origin": f"http://127.0.0.1:{gw.runtime.rest_port}"},
    )
    assert r.status_code == 200
    links = (await gw.http.get("/console/api/pages/links")).json()["data"]["links"]
    assert "ESME_RINVPASWD" in links[0]["last_bind_error"]
    assert links[0]["last_bind_error_at"] > 0


async def test_an_unreachable_smsc_is_reported_but_not_a_warning(
    tmp_path: Path, make_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smsgateway.smpp")
    gw: Gateway = await make_gateway(make_settings(tmp_path, [dead_link()]))
    user = await gw.user("ops@example.com")
    await eventually(lambda: [r for r in caplog.records if "bind failed" in r.getMessage()])
    # Nobody answered, so nothing was refused: retrying is the right thing, quietly.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=user)
    assert r.json()["persist"] is False
    assert r.json()["error"].startswith("link is connecting (last bind error: ")
