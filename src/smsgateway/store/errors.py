"""Errors raised by the store. Core maps them onto the gateway error catalogue."""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """A store operation failed for a reason other than the ones below."""


class StoreUnavailable(StoreError):
    """The database cannot take the write (disk full, I/O error, locked) or is closed.

    Nothing of the failed unit was written. Retrying later may succeed.
    """


class DuplicateError(StoreError):
    """A unique key (email, (app_id, transaction_id), ...) already exists."""

    def __init__(self, what: str) -> None:
        super().__init__(f"duplicate {what}")
        self.what = what


# Primary result codes that mean "the database cannot do this now", as opposed to
# a bug in the statement or a constraint: the caller should answer 503, not 500.
_UNAVAILABLE_CODES = frozenset(
    {
        3,  # SQLITE_PERM
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


def is_unavailable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        # Python's own "Cannot operate on a closed database" has no code.
        return isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)
    return (code & 0xFF) in _UNAVAILABLE_CODES


def translate(exc: sqlite3.Error) -> StoreError:
    """A typed store error for a raw sqlite3 error (chain it with `from exc`)."""
    if is_unavailable(exc):
        return StoreUnavailable(str(exc))
    return StoreError(str(exc))
