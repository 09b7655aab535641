"""Time-ordered identifiers (RFC 9562 UUIDv7).

Layout: 48-bit Unix milliseconds | version 7 | 12 bits + 30 bits of counter |
variant | 32 random bits. The 42-bit counter (RFC 9562 section 6.2, method 1) is
seeded randomly each new millisecond with its top bit clear, and incremented within
the same millisecond, so ids made by one process sort in creation order even when
thousands are made per millisecond. If the clock steps back we keep using the last
timestamp, and if the counter overflows we borrow the next millisecond: ordering
wins over clock accuracy by at most a few milliseconds.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1

_lock = threading.Lock()
_random = random.Random(int.from_bytes(os.urandom(16), "big"))  # seeded from the OS once
_last_ms = 0
_counter = 0


def _seed() -> int:
    # Top bit clear leaves room to count up; from the seeded PRNG, not os.urandom:
    # a system call every millisecond shows up in a send's CPU cost.
    return _random.getrandbits(_COUNTER_BITS - 1)


def _next() -> tuple[int, int]:
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = _seed()
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:
                _last_ms += 1
                _counter = _seed()
        return _last_ms, _counter


def uuid7_int() -> int:
    ms, counter = _next()
    # random.getrandbits: os.urandom is a system call per id, and these 32 bits only
    # need to be unpredictable enough to keep ids from different nodes apart.
    rand = _random.getrandbits(32)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= (counter >> 30) << 64  # 12 bits: rand_a
    value |= 0b10 << 62
    value |= (counter & 0x3FFF_FFFF) << 32
    value |= rand
    return value


def uuid7() -> str:
    """A new UUIDv7 in canonical lowercase hex form, e.g. '0190b5c4-...-7...'."""
    h = f"{uuid7_int():032x}"
    # Formatted by hand: uuid.UUID() validates and copies, several times the cost.
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_ms(value: str) -> int:
    """The Unix milliseconds a UUIDv7 string was made at."""
    return uuid.UUID(value).int >> 80
