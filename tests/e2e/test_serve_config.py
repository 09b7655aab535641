"""`smsgateway serve --config FILE` and `smsgateway user create` as a user runs them:
real processes, the README's TOML, the environment overriding the file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gwkit import eventually
from gwproc import GatewayProcess, clean_env, free_port
from smsgateway import cli
from smsgateway.smscsim.simulator import SmscSimulator

PASSWORD = "correct-horse-9"


def readme_config(data_dir: Path, smsc_port: int, *, admin_key: str = "change-me") -> str:
    """The README's example, every key as it is documented, ports made ephemeral."""
    return f"""
[server]
host = "127.0.0.1"          # address REST (and gRPC) listen on
rest_port = 0
grpc_port = 0
trusted_proxies = []        # CIDRs whose X-Forwarded-For is believed
max_body_bytes = 65536      # larger request bodies get 413
keep_alive_s = 30.0
server_name = "smsgateway"
env = "development"

[storage]
path = "{data_dir / "smsgateway.db"}"

[auth]
admin_api_key = "{admin_key}"
open_registration = false
token_ttl_s = 86400
argon2_time_cost = 1
argon2_memory_cost = 8

[messages]
send_budget_s = 2.0
max_parts = 10
registered_delivery = true
early_receipt_hold_s = 30.0

[[smpp.links]]
id = 1
name = "smpp-link-1"
host = "127.0.0.1"
port = {smsc_port}
system_id = "gw"
password = "secret"
system_type = ""
interface_version = "3.4"
bind_mode = "transceiver"
limit_tps = 100
window = 10
enquire_link_interval = 30.0
response_timeout = 5.0
enabled = true
allowed_ips = []
throttle_pause = 1.0
throttle_retry_s = 30.0
split_method = "udh8"
default_encoding = "gsm7"

[[smpp.pools]]
id = 100
name = "pool-1"
links = [1]
pin_timeout_s = 10.0
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else clean_env(),
    )


async def login_headers(http: httpx.AsyncClient, email: str, app_id: int) -> dict[str, str]:
    r = await http.post(
        "/api/v1/user/login", json={"email": email, "password": PASSWORD, "app_id": app_id}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}


async def test_readme_config_serves_and_sends(
    tmp_path: Path, make_sim: Callable[..., Awaitable[SmscSimulator]]
) -> None:
    sim = await make_sim(system_id="gw", password="secret")
    config = tmp_path / "gateway.toml"
    config.write_text(readme_config(tmp_path / "data", sim.smpp_port), encoding="utf-8")
    gw = GatewayProcess(config, tmp_path / "gateway.log")
    gw.start()
    try:
        url = await gw.wait_ready()
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            assert (await http.get("/healthy")).json() == {"status": "ok"}
            r = await http.post(
                "/api/v1/user/register",
                json={"email": "readme@example.com", "password": PASSWORD, "app_name": "app"},
                headers={"X-Admin-Key": "change-me"},
            )
            assert r.status_code == 201, r.text
            headers = await login_headers(http, "readme@example.com", r.json()["app_id"])

            async def bound() -> bool:
                r = await http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=headers)
                return r.json() == {"persist": True, "system_id": "smscsim", "error": ""}

            await eventually(bound, timeout=10)
            for esme in (1, 100):  # the link, then the pool over it
                r = await http.post(
                    "/api/v1/sms/send",
                    json={
                        "esme": esme,
                        "source": "Readme",
                        "destination": "+447700900123",
                        "message": f"through {esme}",
                    },
                    headers=headers,
                )
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "submitted" and len(r.json()["sms_ids"]) == 1
            r = await http.post("/api/v1/sms/check-esme", json={"esme": 100}, headers=headers)
            assert r.json()["persist"] is True
        assert [m[2].short_message for m in sim.messages] == [b"through 1", b"through 100"]
        assert sim.by_system_id == {"gw": 2}
    finally:
        gw.kill()


def test_pool_id_colliding_with_link_id_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    text = readme_config(tmp_path / "data", free_port()).replace("id = 100", "id = 1")
    config.write_text(text, encoding="utf-8")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode != 0
    assert "smpp.pools: id 1 collides with link smpp-link-1" in result.stderr, result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_other_bad_configs_are_refused_with_the_key_at_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI in-process (the subprocess path is proven above): same code, no interpreter
    # start per case.
    base = readme_config(tmp_path / "data", free_port())
    cases = {
        "pool naming a missing link": (
            base.replace("links = [1]", "links = [1, 7]"),
            "smpp.pools[100] names unknown links [7]",
        ),
        "link id used twice": (
            base.replace("[[smpp.pools]]", "[[smpp.links]]\nid = 1\n\n[[smpp.pools]]"),
            "smpp.links: id 1 used twice",
        ),
        "unknown key": (base.replace("env = ", "colour = 1\nenv = "), "colour"),
        "wrong type": (base.replace("window = 10", 'window = "ten"'), "window"),
        "zero window": (base.replace("window = 10", "window = 0"), "window must be at least 1"),
        "negative throttle retry": (
            base.replace("throttle_retry_s = 30.0", "throttle_retry_s = -1"),
            "throttle_retry_s must not be negative",
        ),
        "negative pin timeout": (
            base.replace("pin_timeout_s = 10.0", "pin_timeout_s = -1.0"),
            "smpp.pools[100].pin_timeout_s must not be negative",
        ),
        "zero keep-alive": (
            base.replace("keep_alive_s = 30.0", "keep_alive_s = 0"),
            "server.keep_alive_s must be positive",
        ),
        "bad CIDR": (
            base.replace("allowed_ips = []", 'allowed_ips = ["10.0.0.300/8"]'),
            "10.0.0.300",
        ),
        "not TOML": ("[server\nhost=", "bad.toml"),
    }
    for name, (text, fragment) in cases.items():
        config = tmp_path / "bad.toml"
        config.write_text(text, encoding="utf-8")
        with pytest.raises(SystemExit) as exited:
            cli.main(["serve", "--config", str(config)])
        assert exited.value.code not in (0, None), name
        err = capsys.readouterr().err
        assert err.startswith("smsgateway: ") and fragment in err, (name, err)
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--config", str(tmp_path / "missing.toml")])
    assert exited.value.code not in (0, None)
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


async def test_admin_api_key_env_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        readme_config(tmp_path / "data", free_port(), admin_key="from-file"), encoding="utf-8"
    )
    gw = GatewayProcess(config, tmp_path / "gateway.log", clean_env(ADMIN_API_KEY="from-env"))
    gw.start()
    try:
        url = await gw.wait_ready()
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            body = {"email": "env@example.com", "password": PASSWORD}
            r = await http.post(
                "/api/v1/auth/register", json=body, headers={"X-Admin-Key": "from-file"}
            )
            assert (r.status_code, r.json()) == (401, {"error": "invalid or missing admin key"})
            r = await http.post(
                "/api/v1/auth/register", json=body, headers={"X-Admin-Key": "from-env"}
            )
            assert r.status_code == 201, r.text
    finally:
        gw.kill()


async def test_user_create_admin_then_validate(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(readme_config(tmp_path / "data", free_port()), encoding="utf-8")
    result = run_cli(
        "user",
        "create",
        "--config",
        str(config),
        "--admin",
        "--email",
        "root@example.com",
        "--password",
        PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    fields = dict(kv.split("=", 1) for kv in result.stdout.split() if "=" in kv)
    assert "(admin)" in result.stdout
    user_id, app_id = int(fields["user_id"]), int(fields["app_id"])
    gw = GatewayProcess(config, tmp_path / "gateway.log")
    gw.start()
    try:
        url = await gw.wait_ready()
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            key = {"X-Admin-Key": "change-me"}
            r = await http.post("/api/v1/user/validate", json={"user_id": user_id}, headers=key)
            assert r.json() == {"is_admin": True, "error": ""}
            r = await http.post("/api/v1/user/delete", json={"user_id": user_id}, headers=key)
            assert (r.status_code, r.json()) == (400, {"error": "user is admin"})
            # The CLI's user logs in through the server with the app it was given.
            await login_headers(http, "root@example.com", app_id)
    finally:
        gw.kill()


def test_user_create_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(readme_config(tmp_path / "data", free_port()), encoding="utf-8")
    args = ["user", "create", "--config", str(config), "--email", "twice@example.com"]
    assert cli.main([*args, "--password", PASSWORD]) == 0
    assert "user_id=1 app_id=1" in capsys.readouterr().out
    assert cli.main([*args, "--password", PASSWORD]) != 0
    assert capsys.readouterr().err == "smsgateway: user already exists\n"
    assert cli.main([*args[:-1], "not-an-email", "--password", PASSWORD]) != 0
    assert "invalid email address" in capsys.readouterr().err
