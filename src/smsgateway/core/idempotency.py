"""Idempotency-Key for every face that takes one (/v1 POSTs, POST /sms/messages), over
the store's idempotency table.

The same key with the same request within the ttl gets the first answer again and
does nothing; the same key with another request is refused; a duplicate that arrives
while the first is still running waits for it (in this process on its future, from
another node by polling the row). Only successful answers are kept: a failure
releases the key, so the retry it invites runs afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable

import msgspec

from ..store.sqlite import SqliteStore
from .errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidRequest

MAX_KEY_CHARS = 255


class Answer(msgspec.Struct, array_like=True):
    status: int
    body: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Answer).decode


def request_hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
        )


class Idempotency:
    def __init__(self, store: SqliteStore, *, ttl_s: float, wait_s: float) -> None:
        self.store = store
        self.ttl_ms = int(ttl_s * 1000)
        self.wait_s = wait_s
        # (scope, key) -> (request hash, the first request's answer; None: it failed).
        self._running: dict[tuple[str, str], tuple[str, asyncio.Future[Answer | None]]] = {}

    async def run(
        self, scope: str, key: str, req_hash: str, work: Callable[[], Awaitable[Answer]]
    ) -> tuple[Answer, bool]:
        """(answer, replayed)."""
        check_key(key)
        deadline = time.monotonic() + self.wait_s
        while True:
            running = self._running.get((scope, key))
            if running is not None:
                if running[0] != req_hash:
                    raise IdempotencyKeyReused()
                first = await asyncio.shield(running[1])
                if first is not None:
                    return first, True
                continue  # the first failed: try for ourselves
            row = await self.store.idem_begin(scope, key, req_hash, self.ttl_ms)
            if row is None:
                return await self._first(scope, key, req_hash, work), False
            if row.request_hash != req_hash:
                raise IdempotencyKeyReused()
            if not row.in_progress and row.response is not None:
                return _decode(row.response), True
            # Running elsewhere (another node), or left by a crash: wait for it.
            if time.monotonic() > deadline:
                if row.created_at < time.time_ns() // 1_000_000 - 2 * self.wait_s * 1000:
                    await self.store.idem_abort(scope, key)  # abandoned: take it over
                    deadline = time.monotonic() + self.wait_s
                    continue
                raise IdempotencyInProgress()
            await asyncio.sleep(0.05)

    async def _first(
        self, scope: str, key: str, req_hash: str, work: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        fut: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._running[(scope, key)] = (req_hash, fut)
        try:
            answer = await work()
            if 200 <= answer.status < 300:
                await self.store.idem_finish(scope, key, _encode(answer))
                fut.set_result(answer)
            else:
                await self.store.idem_abort(scope, key)
                fut.set_result(None)  # waiters run their own request
            return answer
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.idem_abort(scope, key))
            if not fut.done():
                fut.set_result(None)
            raise
        finally:
            del self._running[(scope, key)]
