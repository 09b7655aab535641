"""Persistence: the SQLite store (default), its rows and its errors."""

from .errors import DuplicateError, StoreError, StoreUnavailable
from .models import (
    AppRow,
    AuditRow,
    DeleteResult,
    IdemRow,
    InboundRow,
    LinkStateRow,
    MessageRow,
    MessageWithParts,
    PartRow,
    PartUpdate,
    QueuedPart,
    ReceiptMatch,
    UserRow,
    UserWithApp,
    decode_tlvs,
    encode_tlvs,
)
from .sqlite import SqliteStore, now_ms

__all__ = [
    "AppRow",
    "AuditRow",
    "DeleteResult",
    "DuplicateError",
    "IdemRow",
    "InboundRow",
    "LinkStateRow",
    "MessageRow",
    "MessageWithParts",
    "PartRow",
    "PartUpdate",
    "QueuedPart",
    "ReceiptMatch",
    "SqliteStore",
    "StoreError",
    "StoreUnavailable",
    "UserRow",
    "UserWithApp",
    "decode_tlvs",
    "encode_tlvs",
    "now_ms",
]
