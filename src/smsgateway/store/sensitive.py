"""Wiping sensitive messages' texts once they are final (see core/sealed.py).

The units that store a message's status append `RETURNING_SEALED` to that UPDATE
and pass its cursor to `wipe_if_final`: a plain message costs no extra statement,
a sensitive one that just became final gets its body and part payloads replaced by
fixed markers in the same unit, so a committed final state never leaves a sealed
text behind.
"""

from __future__ import annotations

import sqlite3

from ..core.sealed import WIPED_BODY, WIPED_PART
from ..core.status import FINAL_STATES

# 1 when the row's body is sealed or wiped (it starts with NUL; see core/sealed.py).
RETURNING_SEALED = " RETURNING substr(CAST(body AS BLOB), 1, 1) = x'00'"


def wipe_if_final(
    conn: sqlite3.Connection, cur: sqlite3.Cursor, message_id: str, status: str
) -> None:
    rows = cur.fetchall()  # drained: the statement must not stay open in the unit
    if status in FINAL_STATES and rows and rows[0][0]:
        wipe(conn, message_id)


def wipe(conn: sqlite3.Connection, message_id: str) -> None:
    conn.execute("UPDATE messages SET body = ? WHERE id = ?", (WIPED_BODY, message_id))
    conn.execute(
        "UPDATE parts SET short_message = ? WHERE message_id = ?", (WIPED_PART, message_id)
    )
