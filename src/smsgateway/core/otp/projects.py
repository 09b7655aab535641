"""Projects: a tenant of the /v1 API with its API keys, OTP settings, templates,
test numbers and delivery channel. Rules and validation live here; the admin face
only decodes bodies into `ProjectPatch` and renders what comes back."""

from __future__ import annotations

import re
import secrets as _random
import time
from dataclasses import dataclass

import msgspec
from msgspec import UNSET, UnsetType

from ...store.otp import ApiKeyRow, OtpStore, ProjectRow
from ..errors import ApiKeyNotFound, InvalidApiKey, InvalidRequest, ProjectNotFound
from ..secrets import Secrets
from ..validation import parse_source
from .phone import parse_e164
from .ports import Channels
from .templates import DEFAULT_TEMPLATE, check_template

KEY_PREFIX = "smx_"
_KEY_ID_CHARS = 12  # hex
_KEY = re.compile(r"smx_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_DIGITS = re.compile(r"[0-9]{4,10}")
MAX_TEST_NUMBERS = 100
DEVICE = "device"
DEVICE_CHANNEL_IDS = 1_000_000


class ProjectSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Stored as JSON on the project row; defaults apply to missing keys."""

    code_length: int = 6
    ttl_s: int = 600
    max_checks: int = 5
    max_sends: int = 5
    template: str = DEFAULT_TEMPLATE
    sender: str = "Verify"
    # "device" (the project's linked phone) or the id of an SMPP link, pool or list.
    channel: str | int = DEVICE
    # E.164 number -> fixed code: never sent, always verifiable with that code.
    test_numbers: dict[str, str] = {}


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A create or PATCH body: any subset of the name and settings."""

    name: str | UnsetType = UNSET
    code_length: int | UnsetType = UNSET
    ttl_s: int | UnsetType = UNSET
    max_checks: int | UnsetType = UNSET
    max_sends: int | UnsetType = UNSET
    template: str | UnsetType = UNSET
    sender: str | UnsetType = UNSET
    channel: str | int | UnsetType = UNSET
    test_numbers: dict[str, str] | UnsetType = UNSET


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    settings: ProjectSettings
    created_at: int
    updated_at: int

    @property
    def owner(self) -> str:
        return f"project:{self.id}"

    @property
    def channel_kind(self) -> str:
        return DEVICE if self.settings.channel == DEVICE else "smpp"


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    api_key: str  # shown once


_settings_decoder = msgspec.json.Decoder(ProjectSettings)
_encoder = msgspec.json.Encoder()


def _project(row: ProjectRow) -> Project:
    return Project(
        row.id, row.name, _settings_decoder.decode(row.settings), row.created_at, row.updated_at
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("name is required")
    name = name.strip()
    if len(name) > 64 or any(ord(c) < 32 for c in name):
        raise InvalidRequest("name must be 1 to 64 printable characters")
    return name


def _within(value: int, lo: int, hi: int, what: str) -> None:
    if not lo <= value <= hi:
        raise InvalidRequest(f"{what} must be within {lo}..{hi}")


class ProjectService:
    def __init__(self, store: OtpStore, secrets: Secrets, channels: Channels) -> None:
        self.store = store
        self._secrets = secrets
        self._channels = channels

    # -- settings ---------------------------------------------------------------------

    def _apply(self, name: str, current: ProjectSettings, patch: ProjectPatch) -> ProjectSettings:
        changes = {
            f: getattr(patch, f)
            for f in ProjectSettings.__struct_fields__
            if getattr(patch, f) is not UNSET
        }
        s = msgspec.structs.replace(current, **changes)
        _within(s.code_length, 4, 10, "code_length")
        _within(s.ttl_s, 1, 86_400, "ttl_s")
        _within(s.max_checks, 1, 20, "max_checks")
        _within(s.max_sends, 1, 20, "max_sends")
        check_template(s.template, name)
        try:
            parse_source(s.sender)
        except InvalidRequest as exc:
            raise InvalidRequest(f"sender: {exc.message}") from None
        if isinstance(s.channel, str):
            if s.channel != DEVICE:
                raise InvalidRequest('channel must be "device" or the id of a link, pool or list')
        elif (
            isinstance(s.channel, bool)
            # Device channels (ids from 1_000_000) come and go with linking: "device".
            or not 0 < s.channel < DEVICE_CHANNEL_IDS
            or self._channels.get(s.channel) is None
        ):
            raise InvalidRequest(f"channel {s.channel} is not a configured link, pool or list")
        if len(s.test_numbers) > MAX_TEST_NUMBERS:
            raise InvalidRequest(f"at most {MAX_TEST_NUMBERS} test numbers")
        numbers: dict[str, str] = {}
        for number, code in s.test_numbers.items():
            e164 = parse_e164(number, f"test_numbers[{number!r}]")
            if not isinstance(code, str) or not _DIGITS.fullmatch(code):
                raise InvalidRequest(f"test_numbers[{number!r}] must be a code of 4 to 10 digits")
            numbers[e164] = code
        return msgspec.structs.replace(s, test_numbers=numbers)

    # -- CRUD -------------------------------------------------------------------------

    async def create(self, patch: ProjectPatch) -> Project:
        name = _check_name(None if patch.name is UNSET else patch.name)
        settings = self._apply(name, ProjectSettings(), patch)
        row = await self.store.create_project(name, _encoder.encode(settings).decode(), _now_ms())
        return _project(row)

    async def get(self, project_id: int) -> Project:
        row = await self.store.get_project(project_id)
        if row is None:
            raise ProjectNotFound()
        return _project(row)

    async def all(self) -> list[Project]:
        return [_project(r) for r in await self.store.list_projects()]

    async def update(self, project_id: int, patch: ProjectPatch) -> Project:
        current = await self.get(project_id)
        name = current.name if patch.name is UNSET else _check_name(patch.name)
        settings = self._apply(name, current.settings, patch)
        row = await self.store.update_project(
            project_id, name, _encoder.encode(settings).decode(), _now_ms()
        )
        if row is None:
            raise ProjectNotFound()
        return _project(row)

    async def delete(self, project_id: int) -> None:
        if not await self.store.delete_project(project_id):
            raise ProjectNotFound()

    # -- API keys ---------------------------------------------------------------------

    async def create_key(self, project_id: int, name: str = "") -> NewKey:
        if len(name) > 64:
            raise InvalidRequest("name must be at most 64 characters")
        key_id = _random.token_hex(_KEY_ID_CHARS // 2)
        api_key = f"{KEY_PREFIX}{key_id}_{_random.token_urlsafe(32)}"
        row = ApiKeyRow(
            key_id, project_id, self._secrets.hash_api_key(api_key), name, _now_ms(), None
        )
        if not await self.store.add_key(row):
            raise ProjectNotFound()
        return NewKey(key_id, api_key)

    async def keys(self, project_id: int) -> list[ApiKeyRow]:
        await self.get(project_id)
        return await self.store.list_keys(project_id)

    async def revoke_key(self, project_id: int, key_id: str) -> None:
        if not await self.store.revoke_key(project_id, key_id, _now_ms()):
            raise ApiKeyNotFound()

    async def authenticate(self, presented: str | None) -> Project:
        """The project whose live key this is; InvalidApiKey otherwise."""
        if presented is None:
            raise InvalidApiKey("X-SMX-API-Key header required")
        m = _KEY.fullmatch(presented)
        if m is None:
            raise InvalidApiKey()
        found = await self.store.key_with_project(m.group(1))
        if found is None or not self._secrets.verify_api_key(presented, found[0].key_hash):
            raise InvalidApiKey()
        return _project(found[1])
