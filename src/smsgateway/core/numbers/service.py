"""The virtual-numbers service (document 002): number users, operators, numbers,
get-number, release, the OTPs received. Faces call this; nothing here sees HTTP.

Credentials: a user's API key (shown once, stored as a keyed hash) or the system key
(`numbers.system_api_key`) with the user's id. Each user's webhook secret is shown
once and stored encrypted under the master key: it must sign every delivery.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...settings_numbers import NumbersSettings
from ...store.numbers import (
    AttemptRow,
    EventRow,
    NewNumber,
    NumberRow,
    NumbersStore,
    NumberUserRow,
    OperatorRow,
    SmsRow,
)
from ..errors import (
    CouldNotFetchServiceData,
    CountryIdRequired,
    GatewayError,
    InvalidRequest,
    ManagerInactive,
    NoNumberReceived,
    NumberNotAssigned,
    NumbersInvalidApiKey,
    NumbersMissingCredentials,
    NumbersUserIdRequired,
    NumberUserNotFound,
    ServiceFetchFailed,
    SystemConfigurationError,
    TargetUserNotFound,
    UnableToGetNumber,
    WebhookEventNotFound,
)
from ..metrics import METRICS, FastCounter
from ..secrets import Secrets
from ..webhooks.urls import UrlPolicy, check_webhook_url
from .channels import ChannelMatcher
from .countries import Country, by_id, by_iso, countries
from .formats import check_format, parse_e164, render

log = logging.getLogger(__name__)

ASSIGNMENTS = FastCounter(
    "smsgateway_numbers_assignments", "get-number answers by result", ["result"]
)
METRICS.registry.register(ASSIGNMENTS)

_MAX_KEY = 256
_MAX_ID = 2**63 - 1
MAX_IMPORT = 10_000


@dataclass(frozen=True, slots=True)
class CreatedUser:
    user_id: int
    api_key: str
    webhook_secret: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    existing: list[str]


@dataclass(frozen=True, slots=True)
class NumberInput:
    phone_number: str
    operator_id: int | None = None
    channel: str = ""


def _int_param(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise InvalidRequest(f"{name} must be a positive integer")
    return int(raw)


def new_api_key() -> str:
    return "nk_" + pysecrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + pysecrets.token_urlsafe(32)


class NumbersService:
    def __init__(
        self,
        store: NumbersStore,
        secrets: Secrets,
        settings: NumbersSettings,
        channels: ChannelMatcher,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.settings = settings
        self.channels = channels
        self.policy = UrlPolicy(settings.allow_http_webhooks, settings.allow_private_webhooks)
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- credentials -----------------------------------------------------------------

    async def authenticate(self, api_key: str, user_id: str | None) -> NumberUserRow:
        """The user a 002 request acts for, or the 002 error for why not."""
        if not api_key or len(api_key) > _MAX_KEY or not api_key.isprintable() or " " in api_key:
            raise NumbersMissingCredentials()
        user = await self.store.user_by_key_hash(self.secrets.hash_api_key(api_key))
        if user is not None:
            # user_id is ignored with a user's own key (002).
            if not (user.active and user.approved):
                raise NumbersInvalidApiKey()
            if user.manager_active is False:
                raise ManagerInactive()
            return user
        system = self.settings.system_api_key
        if user_id is not None and user_id != "":
            if not system:
                raise SystemConfigurationError()
            if not hmac.compare_digest(api_key.encode(), system.encode()):
                raise NumbersInvalidApiKey()
            try:
                target_id = _int_param(user_id, "user_id")
            except InvalidRequest:
                raise TargetUserNotFound() from None
            target = await self.store.get_user(target_id) if target_id is not None else None
            if target is None or not (target.active and target.approved):
                raise TargetUserNotFound()
            if target.manager_active is False:
                raise ManagerInactive()
            return target
        if system and hmac.compare_digest(api_key.encode(), system.encode()):
            raise NumbersUserIdRequired()
        raise NumbersInvalidApiKey()

    # -- number users (admin) --------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str,
        name: str = "",
        manager_id: int | None = None,
        webhook_url: str = "",
        number_format: str = "full",
    ) -> CreatedUser:
        email = email.strip().lower()  # as core.auth keeps them: one spelling per address
        if not email or "@" not in email or len(email) > 254:
            raise InvalidRequest("email must be an email address")
        if len(name) > 200:
            raise InvalidRequest("name must be at most 200 characters")
        check_format(number_format)
        url = check_webhook_url(webhook_url, self.policy)
        api_key, secret = new_api_key(), new_webhook_secret()
        user_id = await self.store.create_user(
            email=email,
            name=name,
            manager_id=manager_id,
            webhook_url=url,
            number_format=number_format,
            key_hash=self.secrets.hash_api_key(api_key),
            secret_enc=self.secrets.encrypt_secret(secret),
            now=self._now_ms(),
        )
        if user_id is None:
            raise InvalidRequest(f"manager_id {manager_id}: no such number user")
        log.info("number user created", extra={"user_id": user_id})
        return CreatedUser(user_id, api_key, secret)

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> NumberUserRow:
        fields = dict(changes)
        if "webhook_url" in fields:
            fields["webhook_url"] = check_webhook_url(fields["webhook_url"], self.policy)
        if "number_format" in fields:
            check_format(fields["number_format"])
        if len(fields.get("name", "")) > 200:
            raise InvalidRequest("name must be at most 200 characters")
        if fields.get("manager_id") == user_id:
            raise InvalidRequest("a number user cannot be its own manager")
        for flag in ("active", "approved"):
            if flag in fields:
                fields[flag] = int(bool(fields[flag]))
        outcome = await self.store.update_user(user_id, fields, self._now_ms())
        if outcome == "missing":
            raise NumberUserNotFound()
        if outcome == "no_manager":
            raise InvalidRequest(f"manager_id {fields['manager_id']}: no such number user")
        user = await self.store.get_user(user_id)
        if user is None:
            raise NumberUserNotFound()
        return user

    async def rotate(self, user_id: int, *, api_key: bool, webhook_secret: bool) -> dict[str, str]:
        """New credentials (shown once); the old ones stop working at once."""
        if not (api_key or webhook_secret):
            raise InvalidRequest("nothing to rotate: set api_key and/or webhook_secret")
        key = new_api_key() if api_key else None
        secret = new_webhook_secret() if webhook_secret else None
        ok = await self.store.set_credentials(
            user_id,
            key_hash=self.secrets.hash_api_key(key) if key else None,
            secret_enc=self.secrets.encrypt_secret(secret) if secret else None,
            now=self._now_ms(),
        )
        if not ok:
            raise NumberUserNotFound()
        log.info(
            "number user credentials rotated",
            extra={"user_id": user_id, "api_key": bool(key), "webhook_secret": bool(secret)},
        )
        out: dict[str, str] = {}
        if key:
            out["api_key"] = key
        if secret:
            out["webhook_secret"] = secret
        return out

    async def list_users(self) -> list[NumberUserRow]:
        return await self.store.list_users()

    async def get_user(self, user_id: int) -> NumberUserRow:
        user = await self.store.get_user(user_id)
        if user is None:
            raise NumberUserNotFound()
        return user

    # -- operators and numbers (admin) -----------------------------------------------

    async def create_operator(self, name: str, country_id: int, prefixes: list[str]) -> OperatorRow:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequest("name must be 1-100 characters")
        if country_id not in by_id():
            raise InvalidRequest(f"country_id {country_id}: no such country")
        clean: list[str] = []
        for p in prefixes:
            digits = p.strip().lstrip("+")
            if not (digits.isascii() and digits.isdigit()) or not 1 <= len(digits) <= 15:
                raise InvalidRequest(f"prefix {p!r} must be the leading digits of E.164 numbers")
            if not ("+" + digits).startswith("+" + by_id()[country_id].phone_code):
                raise InvalidRequest(
                    f"prefix {p!r} does not start with the country's code "
                    f"+{by_id()[country_id].phone_code}"
                )
            clean.append(digits)
        op_id = await self.store.create_operator(name, country_id, clean, self._now_ms())
        return OperatorRow(op_id, name, country_id, clean)

    async def import_numbers(self, items: list[NumberInput]) -> ImportResult:
        """Validate every number first (all or nothing), then add the new ones free."""
        if not items:
            raise InvalidRequest("numbers must not be empty")
        if len(items) > MAX_IMPORT:
            raise InvalidRequest(f"at most {MAX_IMPORT} numbers per request")
        operators = {op.id: op for op in await self.store.list_operators()}
        rows: list[NewNumber] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            parsed = parse_e164(item.phone_number)
            if parsed is None:
                raise InvalidRequest(f"numbers[{i}]: {item.phone_number!r} is not a valid number")
            e164, region = parsed
            country = by_iso(region)
            if country is None:
                raise InvalidRequest(f"numbers[{i}]: {e164} has no known country")
            operator_id = item.operator_id
            if operator_id is not None:
                op = operators.get(operator_id)
                if op is None:
                    raise InvalidRequest(f"numbers[{i}]: operator_id {operator_id} does not exist")
                if op.country_id != country.id:
                    raise InvalidRequest(
                        f"numbers[{i}]: operator {operator_id} is not in {country.name}"
                    )
            else:
                operator_id = _operator_by_prefix(e164, country, operators.values())
            try:
                channel = self.channels.check(item.channel)
            except InvalidRequest as exc:
                raise InvalidRequest(f"numbers[{i}]: {exc.message}") from None
            if e164 in seen:
                continue
            seen.add(e164)
            rows.append(NewNumber(e164, country.id, operator_id, channel))
        existing = await self.store.import_numbers(rows, self._now_ms())
        return ImportResult(len(rows) - len(existing), existing)

    async def list_numbers(
        self, state: str | None, country_raw: str | None, after: str, limit_raw: str | None
    ) -> list[NumberRow]:
        if state not in (None, "", "free", "assigned", "quarantined"):
            raise InvalidRequest("state must be free, assigned or quarantined")
        limit = _int_param(limit_raw, "limit") or 100
        if limit > 1000:
            raise InvalidRequest("limit must be at most 1000")
        return await self.store.list_numbers(
            state or None, _int_param(country_raw, "country_id"), after, limit
        )

    async def summary(self) -> dict[str, int]:
        return await self.store.summary()

    # -- the 002 calls ---------------------------------------------------------------

    async def init_data(self) -> tuple[tuple[Country, ...], list[OperatorRow]]:
        try:
            operators = await self.store.list_operators()
        except GatewayError:
            raise
        except Exception as exc:
            log.error("numbers init: operators unavailable: %r", exc)
            raise ServiceFetchFailed() from exc
        return countries(), operators

    async def get_number(
        self,
        user: NumberUserRow,
        country_id_raw: str | None,
        operator_id_raw: str | None,
        number_format_raw: str | None,
    ) -> str:
        if country_id_raw is None or country_id_raw == "":
            raise CountryIdRequired()
        country_id = _int_param(country_id_raw, "country_id")
        operator_id = _int_param(operator_id_raw, "operator_id")
        number_format = check_format(number_format_raw or user.number_format or "full")
        try:
            operators = {op.id: op for op in await self.store.list_operators()}
        except Exception as exc:
            log.error("get-number: operators unavailable: %r", exc)
            raise CouldNotFetchServiceData() from exc
        if country_id not in by_id():
            ASSIGNMENTS.labels("none").inc()
            raise NoNumberReceived()
        if operator_id is not None:
            op = operators.get(operator_id)
            if op is None or op.country_id != country_id:
                ASSIGNMENTS.labels("none").inc()
                raise NoNumberReceived()
        s = self.settings
        try:
            phone = await self.store.assign(
                user.id,
                country_id,
                operator_id,
                self._now_ms(),
                int(s.assignment_ttl_s * 1000),
                int(s.quarantine_s * 1000),
            )
        except Exception as exc:
            log.error("get-number: assignment failed: %r", exc)
            raise UnableToGetNumber() from exc
        if phone is None:
            ASSIGNMENTS.labels("none").inc()
            raise NoNumberReceived()
        ASSIGNMENTS.labels("assigned").inc()
        log.info("number assigned", extra={"user_id": user.id, "country_id": country_id})
        return render(phone, number_format)

    def _phone(self, raw: str | None) -> str:
        if raw is None or raw == "":
            raise InvalidRequest("phone_number is required")
        parsed = parse_e164(raw, strict=False)
        if parsed is None:
            raise InvalidRequest("phone_number must be an international number (+E.164)")
        return parsed[0]

    async def release(self, user: NumberUserRow, phone_raw: str | None) -> str:
        phone = self._phone(phone_raw)
        released = await self.store.release(
            user.id, phone, self._now_ms(), int(self.settings.quarantine_s * 1000)
        )
        if not released:
            raise NumberNotAssigned()
        return phone

    async def my_numbers(self, user: NumberUserRow) -> list[NumberRow]:
        return await self.store.my_numbers(user.id, self._now_ms())

    async def otps(
        self, user: NumberUserRow, phone_raw: str | None, limit: int = 100
    ) -> list[SmsRow]:
        phone = None if phone_raw is None or phone_raw == "" else self._phone(phone_raw)
        return await self.store.sms_for_user(user.id, phone, limit)

    def render(self, e164: str, number_format: str) -> str:
        return render(e164, number_format)

    async def run_expiry(self, every_s: float = 30.0) -> None:
        """Move lapsed assignments to quarantine and ended quarantines back to free
        (get-number does the same before it picks, so this keeps the rows honest)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.store.expire(self._now_ms(), int(self.settings.quarantine_s * 1000))
            except Exception:
                log.exception("number expiry sweep failed")

    # -- webhook events (admin) ------------------------------------------------------

    async def event(self, event_id: str) -> tuple[EventRow, list[AttemptRow]]:
        found = await self.store.get_event(event_id)
        if found is None:
            raise WebhookEventNotFound()
        return found

    async def redeliver(self, event_id: str) -> None:
        if not await self.store.redeliver(event_id, self._now_ms()):
            raise WebhookEventNotFound()
        log.info("webhook event queued again", extra={"event_id": event_id})


def _operator_by_prefix(e164: str, country: Country, operators: Any) -> int | None:
    digits = e164.lstrip("+")
    best: tuple[int, int] | None = None
    for op in operators:
        if op.country_id != country.id:
            continue
        for prefix in op.prefixes:
            if digits.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), op.id)
    return None if best is None else best[1]
