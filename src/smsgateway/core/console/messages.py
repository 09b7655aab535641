"""The admin message search: any tenant's messages, for operators only.

`GET /api/v1/admin/messages` and the console's Messages page both call this. It
checks the filters (a precise InvalidRequest for each bad one) and shapes rows for
display; the store runs the query. Attempts appear once the schema has them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from ...store.console import ConsoleStore, MessageQuery
from ...store.models import MessageRow, PartRow
from ..errors import InvalidRequest, MessageNotFound, store_errors
from ..sealed import shown_text
from ..status import ALL_STATES

LIMIT_DEFAULT = 50
LIMIT_MAX = 500
_ID_MAX = 64
_OWNER = re.compile(r"^(app|oauth|project|numbers):[A-Za-z0-9_.-]{1,64}$")
_DIGITS = re.compile(r"^\+?[0-9]{1,20}$")


def parse_time(value: str, key: str) -> int | None:
    """Unix milliseconds from digits or an ISO-8601 time (UTC unless it says)."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 15:
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{key} must be Unix milliseconds or an ISO-8601 time, got {value[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _short(value: str, key: str) -> str:
    value = value.strip()
    if len(value) > _ID_MAX:
        raise InvalidRequest(f"{key} must be at most {_ID_MAX} characters")
    return value


def build_query(
    *,
    message_id: str = "",
    transaction_id: str = "",
    destination: str = "",
    owner: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    limit: str = "",
) -> MessageQuery:
    message_id = _short(message_id, "message_id")
    transaction_id = _short(transaction_id, "transaction_id")
    destinations: tuple[str, ...] = ()
    destination = destination.strip().replace(" ", "")
    if destination:
        if not _DIGITS.match(destination):
            raise InvalidRequest("destination must be a phone number (digits, optional +)")
        digits = destination.lstrip("+")
        # Stored as the client sent it: look for both spellings.
        destinations = (digits, "+" + digits, "00" + digits)
    owner = owner.strip()
    if owner:
        if owner.isascii() and owner.isdigit():
            owner = f"app:{owner}"  # a bare number is an app id
        if not _OWNER.match(owner):
            raise InvalidRequest(
                "owner must be app:<id>, oauth:<client>, project:<id> or numbers:<id>"
            )
    status = status.strip().lower()
    if status and status not in ALL_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(sorted(ALL_STATES))}")
    since_ms = parse_time(since, "since")
    until_ms = parse_time(until, "until")
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise InvalidRequest("until must be after since")
    n = LIMIT_DEFAULT
    if limit.strip():
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= LIMIT_MAX:
            raise InvalidRequest(f"limit must be within 1..{LIMIT_MAX}")
        n = int(limit)
    return MessageQuery(
        message_id=message_id,
        transaction_id=transaction_id,
        destinations=destinations,
        owner=owner,
        status=status,
        since_ms=since_ms,
        until_ms=until_ms,
        limit=n,
    )


class AdminMessage(msgspec.Struct, kw_only=True):
    """A message as the admin search lists it (any tenant's)."""

    message_id: str
    owner: str  # app:<id>, oauth:<client>, project:<id>, numbers:<id>
    app_id: int
    esme: int  # the link, pool or list it was sent through
    link_id: int | None
    source: str
    destination: str
    status: str
    error: str
    mode: str
    encoding: str
    parts_total: int
    transaction_id: str
    campaign: str
    created_at: int  # Unix ms
    updated_at: int


class AdminMessageFull(AdminMessage, kw_only=True):
    text: str


class AdminPart(msgspec.Struct, kw_only=True):
    seq: int
    link_id: int | None
    smsc_id: str
    state: str
    error: str
    submitted_at: int | None
    receipt_at: int | None  # when a receipt (or a final refusal) settled it
    updated_at: int


class AdminAttempt(msgspec.Struct, kw_only=True):
    """One try of a channel: which one, when, and what it answered."""

    attempt: int
    channel_id: int
    channel_kind: str  # link | pool | list | device
    started_at: int
    ended_at: int
    outcome: str  # accepted | refused | timeout | down
    error: str


class AdminMessageDetail(msgspec.Struct, kw_only=True):
    message: AdminMessageFull
    parts: list[AdminPart]
    attempts: list[AdminAttempt]


class AdminMessagesAnswer(msgspec.Struct):
    success: bool
    data: list[AdminMessage]


class AdminMessageAnswer(msgspec.Struct):
    success: bool
    data: AdminMessageDetail


def _owner(row: MessageRow) -> str:
    return row.owner or f"app:{row.app_id}"


def _fields(row: MessageRow) -> dict[str, Any]:
    return {
        "message_id": row.id,
        "owner": _owner(row),
        "app_id": row.app_id,
        "esme": row.route_id,
        "link_id": row.link_id,
        "source": row.source,
        "destination": row.destination,
        "status": "queued" if row.status == "sending" else row.status,
        "error": row.error,
        "mode": row.mode,
        "encoding": row.encoding,
        "parts_total": row.parts_total,
        "transaction_id": row.transaction_id or "",
        "campaign": row.campaign or "",
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def message_view(row: MessageRow) -> AdminMessage:
    return AdminMessage(**_fields(row))


def part_view(part: PartRow) -> AdminPart:
    return AdminPart(
        seq=part.seq,
        link_id=part.link_id,
        smsc_id=part.smsc_id or "",
        state="queued" if part.state == "sending" else part.state,
        error=part.error or "",
        submitted_at=part.submitted_at,
        receipt_at=part.done_at,
        updated_at=part.updated_at,
    )


class AdminMessages:
    def __init__(self, store: ConsoleStore) -> None:
        self._store = store

    async def search(self, query: MessageQuery) -> list[AdminMessage]:
        with store_errors():
            rows = await self._store.search_messages(query)
        return [message_view(r) for r in rows]

    async def get(self, message_id: str) -> AdminMessageDetail:
        if not message_id or len(message_id) > _ID_MAX:
            raise MessageNotFound()
        with store_errors():
            detail = await self._store.message_detail(message_id)
        if detail is None:
            raise MessageNotFound()
        return AdminMessageDetail(
            message=AdminMessageFull(
                **_fields(detail.message), text=shown_text(detail.message.body)
            ),
            parts=[part_view(p) for p in detail.parts],
            attempts=[
                AdminAttempt(
                    attempt=a.attempt,
                    channel_id=a.channel_id,
                    channel_kind=a.channel_kind,
                    started_at=a.started_at,
                    ended_at=a.ended_at,
                    outcome=a.outcome,
                    error=a.error or "",
                )
                for a in detail.attempts
            ],
        )
