"""One typed settings object, read from a TOML file and the environment.

Every key has a default that runs: with no file at all the gateway starts on a SQLite
file under `./data` with no links (the `demo` command adds the built-in simulator).
Environment variables override the file: `ADMIN_API_KEY` and `SMSGATEWAY_<SECTION>_<KEY>`
(for example `SMSGATEWAY_SERVER_REST_PORT=9090`).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from .settings_channels import ListSettings, SmsApiSettings, validate_lists
from .settings_console import ConsoleSettings, LogSettings, validate_console
from .settings_devices import DeviceSettings
from .settings_numbers import NumbersSettings, validate_numbers
from .settings_oauth import OAuthSettings
from .settings_ops import (
    DashboardSettings,
    FilterSettings,
    LicenseSettings,
    RateLimitSettings,
)
from .settings_otp import OtpSettings


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    rest_port: int = 8080
    grpc_port: int = 44044
    # Addresses whose X-Forwarded-For is believed (CIDRs). Nobody by default.
    trusted_proxies: list[str] = []
    max_body_bytes: int = 64 * 1024
    # Deadlines for a request's head (from connect, or from the previous answer plus
    # keep-alive) and for its body: slow or idle clients cannot hold connections.
    head_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    # An idle keep-alive connection is closed this long after its last answer.
    keep_alive_s: float = 30.0
    server_name: str = "smsgateway"
    env: str = "development"
    # PEM files; both set: REST serves HTTPS and gRPC serves TLS on their ports.
    tls_cert: str = ""
    tls_key: str = ""


class StorageSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "data/smsgateway.db"


class AuthSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    admin_api_key: str = ""
    open_registration: bool = False
    token_ttl_s: int = 24 * 3600
    # Lower argon2 costs are only for tests; production keeps the library defaults.
    argon2_time_cost: int = 0
    argon2_memory_cost: int = 0


class LinkSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: int
    name: str = ""
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: str = "3.4"
    bind_mode: Literal["transceiver", "transmitter", "receiver"] = "transceiver"
    limit_tps: int = 100
    window: int = 10
    enquire_link_interval: float = 30.0
    response_timeout: float = 5.0
    enabled: bool = True
    allowed_ips: list[str] = []
    # ESME_RTHROTTLED / ESME_RMSGQFUL: every submit on the link waits `throttle_pause`,
    # and a part is retried for `throttle_retry_s` before that status is its answer
    # (0: retried until the SMSC takes it).
    throttle_pause: float = 1.0
    throttle_retry_s: float = 30.0
    # How long-text parts are joined: UDH with 8- or 16-bit reference, SAR TLVs, or one
    # message_payload TLV for SMSCs that split themselves.
    split_method: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    # What data_coding 0 means on this SMSC for text we send and receive.
    default_encoding: Literal["gsm7", "latin1", "ascii"] = "gsm7"
    source_ton: int = -1  # -1: choose from the address
    source_npi: int = -1
    dest_ton: int = -1
    dest_npi: int = -1


class PoolSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: int
    name: str = ""
    links: list[int] = []
    # How long the rest of a long message waits for the member that took its first
    # parts (only that SMSC may join them) before another member sends it.
    pin_timeout_s: float = 10.0


class SmppSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    links: list[LinkSettings] = []
    pools: list[PoolSettings] = []
    lists: list[ListSettings] = []


class MessageSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # How long a send waits for the SMSC before answering `queued`.
    send_budget_s: float = 2.0
    max_parts: int = 10
    registered_delivery: bool = True
    # How long a receipt that beat its submit_sm_resp is kept for matching.
    early_receipt_hold_s: float = 30.0
    # How long a send with wait="accepted" waits for a channel to take or refuse it
    # before answering `queued` (a priority list ends sooner: its members time out).
    accept_wait_s: float = 60.0


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    smpp: SmppSettings = msgspec.field(default_factory=SmppSettings)
    messages: MessageSettings = msgspec.field(default_factory=MessageSettings)
    ratelimit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    dashboard: DashboardSettings = msgspec.field(default_factory=DashboardSettings)
    license: LicenseSettings = msgspec.field(default_factory=LicenseSettings)
    filters: list[FilterSettings] = []
    otp: OtpSettings = msgspec.field(default_factory=OtpSettings)
    devices: DeviceSettings = msgspec.field(default_factory=DeviceSettings)
    sms_api: SmsApiSettings = msgspec.field(default_factory=SmsApiSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    numbers: NumbersSettings = msgspec.field(default_factory=NumbersSettings)
    oauth: OAuthSettings = msgspec.field(default_factory=OAuthSettings)

    def validate(self) -> None:
        """Refuse configurations that would misbehave later, naming the key."""
        seen: dict[int, str] = {}
        for link in self.smpp.links:
            if link.id in seen:
                raise SettingsError(f"smpp.links: id {link.id} used twice")
            seen[link.id] = f"link {link.name or link.id}"
            if link.window < 1:
                raise SettingsError(f"smpp.links[{link.id}].window must be at least 1")
            if link.limit_tps < 0:
                raise SettingsError(f"smpp.links[{link.id}].limit_tps must not be negative")
            if link.throttle_pause < 0 or link.throttle_retry_s < 0:
                raise SettingsError(
                    f"smpp.links[{link.id}].throttle_pause and throttle_retry_s "
                    "must not be negative"
                )
            for cidr in link.allowed_ips:
                _parse_cidr(cidr, f"smpp.links[{link.id}].allowed_ips")
            _check_bind(link)
        link_ids = set(seen)
        for pool in self.smpp.pools:
            if pool.id in seen:
                raise SettingsError(
                    f"smpp.pools: id {pool.id} collides with {seen[pool.id]}; "
                    "`esme` names a link or a pool, so their ids must differ"
                )
            seen[pool.id] = f"pool {pool.name or pool.id}"
            if pool.pin_timeout_s < 0:
                raise SettingsError(f"smpp.pools[{pool.id}].pin_timeout_s must not be negative")
            missing = [i for i in pool.links if i not in link_ids]
            if missing:
                raise SettingsError(f"smpp.pools[{pool.id}] names unknown links {missing}")
        try:
            validate_lists(self.smpp, self.sms_api)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        for cidr in self.server.trusted_proxies:
            _parse_cidr(cidr, "server.trusted_proxies")
        for key in ("head_timeout_s", "body_timeout_s", "keep_alive_s"):
            if not getattr(self.server, key) > 0:
                raise SettingsError(f"server.{key} must be positive")
        if self.messages.max_parts < 1 or self.messages.max_parts > 255:
            raise SettingsError("messages.max_parts must be within 1..255")
        try:
            self.otp.validate()
            self.devices.validate()
            validate_numbers(self.numbers)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        from .core.ops import validate_settings  # the ops checks live with their code

        try:
            validate_settings(self)
            self.oauth.validate()
            validate_console(self.console)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc


# SMPP 3.4 section 4.1.1: C-Octet String fields, maximum lengths without the NUL.
_BIND_FIELD_MAX = {"system_id": 15, "password": 8, "system_type": 12}


def _check_bind(link: LinkSettings) -> None:
    """A bind the SMSC can never accept is refused here, naming the key, rather than
    retried forever at run time."""
    for key, limit in _BIND_FIELD_MAX.items():
        value: str = getattr(link, key)
        if not value.isascii():
            raise SettingsError(f"smpp.links[{link.id}].{key} must be ASCII")
        if len(value) > limit:
            raise SettingsError(
                f"smpp.links[{link.id}].{key} is {len(value)} octets; SMPP 3.4 allows"
                f" at most {limit}"
            )
    if link.interface_version not in ("3.3", "3.4"):
        raise SettingsError(f'smpp.links[{link.id}].interface_version must be "3.4" or "3.3"')
    if link.interface_version == "3.3" and link.bind_mode == "transceiver":
        raise SettingsError(
            f"smpp.links[{link.id}].bind_mode: SMPP 3.3 has no transceiver bind;"
            " use transmitter or receiver, or interface_version 3.4"
        )


def _parse_cidr(text: str, where: str) -> None:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise SettingsError(f"{where}: {text!r} is not an address or CIDR") from exc


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith("SMSGATEWAY_") or name == "SMSGATEWAY_MASTER_KEY":
            continue
        section, _, key = name[len("SMSGATEWAY_") :].lower().partition("_")
        if key and section in {
            "server",
            "storage",
            "auth",
            "messages",
            "ratelimit",
            "dashboard",
            "license",
            "otp",
            "devices",
            "console",
            "log",
            "numbers",
            "oauth",
        }:
            out.setdefault(section, {})[key] = value
    if env.get("ADMIN_API_KEY"):
        out.setdefault("auth", {})["admin_api_key"] = env["ADMIN_API_KEY"]
    return out


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
    for section, values in _env_overrides(os.environ if env is None else env).items():
        raw.setdefault(section, {}).update(values)
    try:
        # strict=False lets environment strings fill int/bool/float fields.
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"configuration: {exc}") from exc
    settings.validate()
    return settings
