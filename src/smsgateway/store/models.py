"""Typed rows the store takes and returns.

Field order of the row structs matches the column order of their tables: the store
builds its SELECT lists from `__struct_fields__`, so adding a column means adding a
field here in the same place.
"""

from __future__ import annotations

import enum

import msgspec


class UserRow(msgspec.Struct, frozen=True):
    id: int
    email: str
    password_hash: str
    is_admin: bool
    created_at: int


class AppRow(msgspec.Struct, frozen=True):
    id: int
    user_id: int
    name: str
    secret_enc: bytes
    created_at: int


class UserWithApp(msgspec.Struct, frozen=True):
    """One row per (user, app); app fields are None for a user without apps."""

    user_id: int
    email: str
    is_admin: bool
    created_at: int
    app_id: int | None
    app_name: str | None
    secret_enc: bytes | None


class DeleteResult(enum.Enum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    IS_ADMIN = "is_admin"


class MessageRow(msgspec.Struct, frozen=True):
    id: str
    app_id: int
    route_id: int
    link_id: int | None
    source: str
    destination: str
    body: str
    encoding: str
    mode: str
    parts_total: int
    status: str
    error: str
    transaction_id: str | None
    task_id: int
    campaign: str | None
    created_at: int
    updated_at: int
    not_before: int | None = None
    validity_until: int | None = None
    next_attempt_at: int | None = None
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    attempts: int = 0
    dead_letter: bool = False
    # Migration 0004: the tenant ('app:<id>', 'oauth:<client>', ...) and its
    # idempotency key (unique per owner).
    owner: str = ""
    idem_key: str | None = None
    source_ton: int | None = None


class PartRow(msgspec.Struct, frozen=True):
    message_id: str
    seq: int
    link_id: int | None
    smsc_id: str | None
    state: str
    error: str | None
    short_message: bytes
    data_coding: int
    esm_class: int
    tlvs: bytes | None
    submitted_at: int | None
    done_at: int | None
    updated_at: int


class MessageWithParts(msgspec.Struct, frozen=True):
    message: MessageRow
    parts: list[PartRow]


class PartUpdate(msgspec.Struct, frozen=True):
    """A part's progress at submit time (`sending`, then `submitted` or a refusal).

    `link_id` and `smsc_id` left None keep what the part already has.
    """

    message_id: str
    seq: int
    link_id: int | None
    smsc_id: str | None
    state: str
    error: str | None
    at: int


class QueuedPart(msgspec.Struct, frozen=True):
    """What the dispatcher needs to send one part."""

    message_id: str
    seq: int
    parts_total: int
    app_id: int
    route_id: int
    source: str
    destination: str
    short_message: bytes
    data_coding: int
    esm_class: int
    tlvs: bytes | None
    validity_until: int | None
    created_at: int


class ReceiptMatch(msgspec.Struct, frozen=True):
    """The part a receipt matched, and where that left it and its message."""

    message_id: str
    seq: int
    app_id: int
    part_state: str
    message_status: str
    changed: bool
    campaign: str | None = None


class LinkStateRow(msgspec.Struct, frozen=True):
    link_id: int
    enabled: bool
    reason: str
    updated_at: int
    updated_by: str


class AuditRow(msgspec.Struct, frozen=True):
    id: int
    at: int
    actor: str
    action: str
    target: str
    detail: str


class IdemRow(msgspec.Struct, frozen=True):
    scope: str
    key: str
    request_hash: str
    response: bytes | None
    in_progress: bool
    created_at: int
    expires_at: int


class InboundRow(msgspec.Struct, frozen=True):
    id: str
    link_id: int | None
    source: str
    destination: str
    text: str
    received_at: int


_TlvList = list[tuple[int, bytes]]
_tlv_encoder = msgspec.msgpack.Encoder()
_tlv_decoder = msgspec.msgpack.Decoder(_TlvList)


def encode_tlvs(tlvs: list[tuple[int, bytes]]) -> bytes | None:
    """TLVs as stored in `parts.tlvs`: msgpack list of [tag, value] pairs, or NULL."""
    return _tlv_encoder.encode(tlvs) if tlvs else None


def decode_tlvs(blob: bytes | None) -> list[tuple[int, bytes]]:
    return _tlv_decoder.decode(blob) if blob else []
