"""The `smsgateway` command line: one entry point, one subcommand per tool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from .settings import LinkSettings, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from .devicesim.sim import DeviceSim
    from .runtime import Runtime

log = logging.getLogger("smsgateway")


def _setup_logging(level: str, settings: Settings | None = None) -> None:
    from .logs import configure

    if settings is None:
        configure(level)
    else:
        configure(settings.log.level or level, settings.log.format)


async def _run_until_signal(settings: Settings, *, demo_smsc_port: int | None = None) -> int:
    """Run until SIGINT/SIGTERM; with `demo_smsc_port`, the built-in SMSC simulator
    listens there (its control surface on the next port) for the demo link."""
    from .runtime import Runtime

    sim = None
    if demo_smsc_port is not None:
        from .smscsim.simulator import SimulatorConfig, SmscSimulator

        sim = SmscSimulator(
            SimulatorConfig(
                host="127.0.0.1",
                port=demo_smsc_port,
                http_port=demo_smsc_port + 1,
                dlr_delay_ms=500,
            )
        )
        await sim.start()
    runtime = Runtime(settings)
    await runtime.start()
    phone = None
    if demo_smsc_port is not None:
        phone = await _demo_phone(settings, runtime)
        _print_oneshot_demo(settings, runtime.rest_port)
        _print_demo(settings, runtime.rest_port, demo_smsc_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if phone is not None:
        await phone.stop()
    await runtime.stop()
    if sim is not None:
        await sim.stop()
    return 0


async def _demo_phone(settings: Settings, runtime: Runtime) -> DeviceSim:
    """A "Demo" OTP project and a reference phone linked to it (see devicesim/demo.py),
    and the send-otp / verify-otp session to try."""
    from .devicesim.demo import demo_project_phone

    base = f"http://{settings.server.host}:{runtime.rest_port}"

    def show(sms: Any) -> None:
        print(f"demo phone got an SMS for {sms.phone_numbers[0]}: {sms.text}", flush=True)

    demo = await demo_project_phone(base, settings.auth.admin_api_key, on_received=show)
    print(
        f"""
OTP demo: project {demo.project_id} ("Demo") has a reference phone linked (device-sim, in
this process); each SMS it gets is printed here. In another shell:

  KEY='{demo.api_key}'
  curl -s -X POST {base}/v1/send-otp -H "X-SMX-API-Key: $KEY" \\
       -H 'Content-Type: application/json' -d '{{"to":"+447700900123"}}'
  # the phone's SMS with the code shows up here; then, with the verificationId:
  curl -s -X POST {base}/v1/verify-otp -H "X-SMX-API-Key: $KEY" \\
       -H 'Content-Type: application/json' \\
       -d '{{"verificationId":"<verificationId>","otp":"<code>"}}'
""",
        flush=True,
    )
    return demo.phone


def _load(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.config)
    except SettingsError as exc:
        print(f"smsgateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args)
    _setup_logging(args.log_level, settings)
    return _run(_run_until_signal(settings))


def cmd_demo(args: argparse.Namespace) -> int:
    """Gateway plus the built-in SMSC simulator and one demo link: works out of the box."""
    settings = _load(args)
    if not settings.auth.admin_api_key:
        settings.auth.admin_api_key = os.environ.get("ADMIN_API_KEY", "demo-admin-key")
    if not settings.smpp.links:
        settings.smpp.links.append(
            LinkSettings(
                id=1,
                name="demo-link",
                host="127.0.0.1",
                port=args.smsc_port,
                system_id="demo",
                limit_tps=200,
            )
        )
    if not settings.sms_api.gateways:
        settings.sms_api.gateways = [settings.smpp.links[0].id]
    settings.validate()
    _setup_logging(args.log_level, settings)
    return _run(_run_until_signal(settings, demo_smsc_port=args.smsc_port))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def _print_oneshot_demo(settings: Settings, port: int) -> None:
    base = f"http://{settings.server.host}:{port}"
    key = settings.auth.admin_api_key
    field = "python3 -c 'import json,sys; print(json.load(sys.stdin){})'"
    print(
        f"""
One-shot face (POST /sms/messages, gateways tried in order: {settings.sms_api.gateways}):
an OAuth client, a token from the gateway's own endpoint, one send (200 = accepted):

  CLIENT=$(curl -s -X POST {base}/api/v1/admin/oauth-clients -H 'X-Admin-Key: {key}' \\
       -H 'Content-Type: application/json' -d '{{"name":"demo","scopes":["client.sms.send"]}}')
  ID=$(echo "$CLIENT" | {field.format('["data"]["client_id"]')})
  SECRET=$(echo "$CLIENT" | {field.format('["data"]["client_secret"]')})
  AT=$(curl -s -u "$ID:$SECRET" -d grant_type=client_credentials -d scope=client.sms.send \\
       {base}/oauth/token | {field.format('["access_token"]')})
  curl -s -o /dev/null -w '%{{http_code}}\\n' -X POST {base}/sms/messages \\
       -H "Authorization: Bearer $AT" -H 'Content-Type: application/json' \\
       -d '{{"sender":"Demo","recipient":"+4798765432","message":"Your code: 1234"}}'

Operator console: {base}/console (sign in with the admin key {key}); API docs: {base}/docs
""",
        flush=True,
    )


def _print_demo(settings: Settings, port: int, smsc_port: int) -> None:
    base = f"http://{settings.server.host}:{port}"
    key = settings.auth.admin_api_key
    print(
        f"""
smsgateway is running on {base} with the built-in SMSC simulator on 127.0.0.1:{smsc_port}
(simulator control: http://127.0.0.1:{smsc_port + 1}/stats). Try, in another shell:

  curl -s -X POST {base}/api/v1/auth/register -H 'X-Admin-Key: {key}' \\
       -d '{{"email":"me@example.com","password":"correct-horse-9"}}'
  # note app_id from the answer, then:
  TOKEN=$(curl -s -X POST {base}/api/v1/auth/login \\
       -d '{{"email":"me@example.com","password":"correct-horse-9","app_id":1}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -X POST {base}/api/v1/sms/check-esme -H "Authorization: Bearer $TOKEN" \\
       -H 'X-App-ID: 1' -d '{{"esme":1}}'
  curl -s -X POST {base}/api/v1/sms/send -H "Authorization: Bearer $TOKEN" -H 'X-App-ID: 1' \\
       -d '{{"esme":1,"source":"Demo","destination":"+447700900123","message":"Hello"}}'
  # then, with the message_id from the answer (receipts arrive after 0.5 s):
  curl -s -X POST {base}/api/v1/sms/info -H "Authorization: Bearer $TOKEN" -H 'X-App-ID: 1' \\
       -d '{{"esme":1,"message_id":"<message_id>"}}'
  # the operator console: {base}/console (sign in with the admin key), the API: {base}/docs

Press Ctrl-C to stop.
""",
        flush=True,
    )


def cmd_user_create(args: argparse.Namespace) -> int:
    settings = _load(args)
    password = args.password or os.environ.get("SMSGATEWAY_NEW_PASSWORD") or getpass.getpass()

    async def create() -> int:
        from pathlib import Path

        from .core.auth import AuthService, password_hasher
        from .core.errors import GatewayError
        from .core.secrets import Secrets
        from .store.sqlite import SqliteStore

        Path(settings.storage.path).parent.mkdir(parents=True, exist_ok=True)
        store = await SqliteStore.open(settings.storage.path)
        try:
            a = settings.auth
            hasher = password_hasher(a.argon2_time_cost, a.argon2_memory_cost)
            auth = AuthService(
                store,
                Secrets.load(Path(settings.storage.path).parent),
                token_ttl_s=a.token_ttl_s,
                hasher=hasher,
            )
            created = await auth.register(
                args.email, password, args.app_name or None, is_admin=args.admin
            )
        except GatewayError as exc:
            print(f"smsgateway: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        print(
            f"user_id={created.user_id} app_id={created.app_id} app_secret={created.app_secret}"
            + (" (admin)" if args.admin else "")
        )
        return 0

    return asyncio.run(create())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgateway", description="SMS gateway, SMPP 3.4 links")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML settings file (see README)")
        p.add_argument("--log-level", default="INFO")

    serve = sub.add_parser("serve", help="run the gateway")
    common(serve)
    serve.set_defaults(handler=cmd_serve)

    demo = sub.add_parser("demo", help="run the gateway with the SMSC simulator and a demo link")
    common(demo)
    demo.add_argument(
        "--smsc-port",
        type=int,
        default=2775,
        help="the simulator's SMPP port (its HTTP control on the next one); default 2775",
    )
    demo.set_defaults(handler=cmd_demo)

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user and its first app")
    create.add_argument("--config")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="or SMSGATEWAY_NEW_PASSWORD, or a prompt")
    create.add_argument("--app-name", default="")
    create.add_argument("--admin", action="store_true")
    create.set_defaults(handler=cmd_user_create)

    from . import license_cli
    from .devicesim import cli as devicesim_cli
    from .smscsim import cli as smscsim_cli

    smscsim_cli.add_parser(sub)
    devicesim_cli.add_parser(sub)
    license_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
