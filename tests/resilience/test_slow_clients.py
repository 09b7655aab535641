"""Idle and slow connections must not starve real clients.

The gateway's HTTP server (runtime.py, api/httpserver.py) gives every request head a
deadline from connect (or from the previous answer plus keep-alive), every body one
too (408), and has no connection cap that idle sockets could fill: slowloris sockets
are cut off, thousands of idle ones cost memory only, and real requests are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from resil_kit import ADMIN_KEY, SimFactory, parts_of, send_body, user_headers

from gwkit import Gateway, link_to, make_settings

SLOW = 500


async def slow_socket(port: int, stop: asyncio.Event, sent: list[int]) -> None:
    """Headers one byte at a time, never finishing them."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = b"POST /api/v1/sms/send HTTP/1.1\r\nHost: x\r\nX-Slow: "
        for i in range(len(head)):
            writer.write(head[i : i + 1])
            sent[0] += 1
            await asyncio.sleep(0.05)
        while not stop.is_set():
            writer.write(b"a")
            sent[0] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    except ConnectionError:
        sent[1] += 1  # the server hung up on us
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_slowloris_does_not_starve_real_clients(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY))
    await gw.bound()
    headers = await user_headers(gw.http)
    stop = asyncio.Event()
    sent = [0, 0]
    port = gw.runtime.rest_port
    slow = [asyncio.create_task(slow_socket(port, stop, sent)) for _ in range(SLOW)]
    try:
        await asyncio.sleep(1.5)  # every socket connected and mid-head
        worst = 0.0
        for i in range(30):
            started = time.monotonic()
            r = await gw.http.post("/api/v1/sms/send", json=send_body(i), headers=headers)
            assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
            r = await gw.http.get("/healthy")
            assert r.status_code == 200
            worst = max(worst, time.monotonic() - started)
        print(
            f"\n{SLOW} slowloris sockets ({sent[0]} bytes trickled, {sent[1]} cut off): "
            f"worst send+health round trip {worst * 1000:.0f} ms"
        )
        assert worst < 2.0
        assert sim.submits == sum(parts_of(i) for i in range(30))
    finally:
        stop.set()
        await asyncio.gather(*slow)


async def test_idle_connections_up_to_the_concurrency_limit_do_not_lock_clients_out(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY))
    idle: list[asyncio.StreamWriter] = []
    try:
        for _ in range(4096):
            _reader, writer = await asyncio.open_connection("127.0.0.1", gw.runtime.rest_port)
            idle.append(writer)
        await asyncio.sleep(0.5)
        r = await gw.http.get("/healthy")
        assert r.status_code == 200, r.text
    finally:
        for writer in idle:
            writer.close()


async def test_heads_and_bodies_have_deadlines(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """A connection that sends nothing, a head that trickles in, and a body that never
    finishes are each cut off at their deadline; a real client is served throughout."""
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY)
    settings.server.head_timeout_s = 0.5
    settings.server.body_timeout_s = 0.5
    gw: Gateway = await make_gateway(settings)
    port = gw.runtime.rest_port

    silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
    trickle_r, trickle_w = await asyncio.open_connection("127.0.0.1", port)
    trickle_w.write(b"GET /healthy HTTP/1.1\r\n")
    started = asyncio.get_running_loop().time()
    for _ in range(10):  # a header line now and then: a slowloris keeps it "alive"
        trickle_w.write(b"X-Slow: 1\r\n")
        await asyncio.sleep(0.1)
        if trickle_r.at_eof():
            break
    assert (await asyncio.wait_for(silent_r.read(), 5)) == b""  # closed by the server
    assert (await asyncio.wait_for(trickle_r.read(), 5)) == b""
    assert asyncio.get_running_loop().time() - started < 5
    assert (await gw.http.get("/healthy")).status_code == 200

    body_r, body_w = await asyncio.open_connection("127.0.0.1", port)
    body_w.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"email"'
    )
    answer = await asyncio.wait_for(body_r.read(4096), 5)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request body not received in time" in answer
    for w in (silent_w, trickle_w, body_w):
        w.close()


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(h for h in head.split(b"\r\n") if h.startswith(b"content-length:"))[15:])
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


async def test_keep_alive_connections_get_fresh_head_deadlines(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """A busy keep-alive connection lives on past many head deadlines; once idle, it is
    closed after `keep_alive_s`; a head that trickles in after an answer is cut off
    `keep_alive_s + head_timeout_s` after that answer."""
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY)
    settings.server.head_timeout_s = 0.3
    settings.server.keep_alive_s = 0.4
    gw: Gateway = await make_gateway(settings)
    port = gw.runtime.rest_port
    loop = asyncio.get_running_loop()
    request = b"GET /healthy HTTP/1.1\r\nHost: x\r\n\r\n"

    busy_r, busy_w = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    served = 0
    while loop.time() - started < 1.2:  # four head deadlines
        busy_w.write(request)
        assert (await read_answer(busy_r)).startswith(b"HTTP/1.1 200")
        served += 1
        await asyncio.sleep(0.05)
    assert served > 10
    idle_from = loop.time()
    assert await asyncio.wait_for(busy_r.read(), 5) == b""  # idle: closed
    assert 0.3 < loop.time() - idle_from < 2.0

    slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port)
    slow_w.write(request)
    assert (await read_answer(slow_r)).startswith(b"HTTP/1.1 200")
    answered = loop.time()
    slow_w.write(b"GET /healthy HTTP/1.1\r\n")  # data within keep-alive, never a whole head
    for _ in range(30):
        if slow_r.at_eof():
            break
        slow_w.write(b"X-Slow: 1\r\n")
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(slow_r.read(), 5) == b""
    assert 0.6 < loop.time() - answered < 2.0  # keep-alive 0.4 + head 0.3
    for w in (busy_w, slow_w):
        w.close()
