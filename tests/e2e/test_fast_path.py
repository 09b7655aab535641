"""The hot routes served by the HTTP protocol itself (api/fastpath.py, api/httpserver.py),
seen byte by byte from a raw socket: what a client gets on the fast path, that it is
what the ASGI path gives for the same request, and that keep-alive, pipelining,
`Connection: close`, HTTP/1.0, chunked bodies, body limits and deadlines, clients that
leave early and a graceful shutdown behave as they do for any other request.

A query string sends a request on a hot path the ASGI way (the protocol matches the
raw request target), which is how each answer is compared with its ASGI twin; the
protocol's `served` counter proves which way a request went.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gwkit import Gateway, eventually, link_to, make_settings
from smsgateway.settings import Settings
from smsgateway.settings_ops import RateLimitSettings
from smsgateway.smscsim.simulator import SmscSimulator

SEND = "/api/v1/sms/send"
CHECK = "/api/v1/sms/check-esme"
INFO = "/api/v1/sms/info"
LIMIT = 1024  # max_body_bytes of these gateways
DATE = re.compile(rb"\r\ndate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")

GatewayFactory = Callable[[Settings], Awaitable[Gateway]]
SimFactory = Callable[..., Awaitable[SmscSimulator]]


class Conn:
    """A raw client connection: write bytes, read whole answers one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer(self, timeout: float = 10.0) -> bytes:
        """One answer, exactly as sent, with its date's value replaced by "X"."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        length = re.search(rb"\r\ncontent-length: (\d+)\r\n", head)
        assert length is not None, head
        body = await asyncio.wait_for(self.reader.readexactly(int(length[1])), timeout)
        assert DATE.search(head), head
        return DATE.sub(b"\r\ndate: X\r\n", head) + body

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (nothing more to read),
        False if it is still open after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request(
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: gw"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def post(target: str, payload: Any, headers: dict[str, str] | None = None) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return request("POST", target, body, {"Content-Type": "application/json", **(headers or {})})


def chunked_head(target: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target} HTTP/1.1", "Host: gw", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def expected(status: str, body: bytes, *extra: str) -> bytes:
    """An answer as uvicorn's ASGI path writes a Starlette JSON Response."""
    head = [f"HTTP/1.1 {status}", "date: X", "server: uvicorn"]
    head += [f"content-length: {len(body)}", "content-type: application/json", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> Any:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def message(i: int, **kw: Any) -> dict[str, Any]:
    return {"esme": 1, "source": "Fast", "destination": f"+49151{i:08d}", "message": "hi", **kw}


async def exchange(gw: Gateway, raw: bytes, *, fast: bool) -> bytes:
    """One request on a new connection; asserts which path served it."""
    served = gw.runtime.fast_routes.served if gw.runtime.fast_routes else 0
    conn = await Conn.open(gw.runtime.rest_port)
    try:
        conn.write(raw)
        answer = await conn.answer()
    finally:
        await conn.close()
    now = gw.runtime.fast_routes.served if gw.runtime.fast_routes else 0
    assert now - served == (1 if fast else 0), (raw[:60], answer)
    return answer


def via_asgi(raw: bytes) -> bytes:
    """The same request with a query string: the ASGI path serves it."""
    line, rest = raw.split(b"\r\n", 1)
    method, target, version = line.split(b" ")
    return b" ".join((method, target + b"?via=asgi", version)) + b"\r\n" + rest


@pytest.fixture
async def gateway(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> tuple[Gateway, SmscSimulator, dict[str, str]]:
    """A gateway bound to a simulator, without the per-app limit (its quota headers
    are tested on their own), a small body limit and a short body deadline."""
    sim = await make_sim()
    gw = await make_gateway(
        make_settings(
            tmp_path,
            [link_to(sim)],
            ratelimit=RateLimitSettings(app_rps=0),
            max_body_bytes=LIMIT,
            body_timeout_s=0.3,
        )
    )
    await gw.bound()
    return gw, sim, await gw.user("fast@example.com")


async def test_answers_byte_for_byte_and_as_the_asgi_path(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, sim, auth = gateway
    assert gw.runtime.fast_routes is not None
    bad_token = {"Authorization": "Bearer a.b.c", "X-App-ID": auth["X-App-ID"]}
    too_big = json.dumps(message(0, message="x" * LIMIT)).encode()
    cases: list[tuple[bytes, bytes]] = [
        (request("GET", "/healthy"), expected("200 OK", b'{"status":"ok"}')),
        (
            post(CHECK, {"esme": 1}, auth),
            expected("200 OK", b'{"persist":true,"system_id":"smscsim","error":""}'),
        ),
        (post(CHECK, {"esme": 9}, auth), expected("404 Not Found", b'{"error":"unknown esme"}')),
        (
            post(INFO, {"message_id": "nope"}, auth),
            expected("404 Not Found", b'{"error":"message not found"}'),
        ),
        (
            post(SEND, message(1)),
            expected("401 Unauthorized", b'{"error":"authorization header required"}'),
        ),
        (
            post(SEND, message(1), bad_token),
            expected("401 Unauthorized", b'{"error":"invalid or expired token"}'),
        ),
        (
            post(SEND, b'{"esme":', auth),
            expected("400 Bad Request", b'{"error":"malformed JSON: Input data was truncated"}'),
        ),
        (
            post(SEND, b"", auth),
            expected("400 Bad Request", b'{"error":"request body is required"}'),
        ),
        (
            post(SEND, too_big, auth),
            expected(
                "413 Request Entity Too Large",
                b'{"error":"request body too large (limit 1024 bytes)"}',
            ),
        ),
        (
            # The token is checked before the body: 401 even though the body is too big.
            post(SEND, too_big),
            expected("401 Unauthorized", b'{"error":"authorization header required"}'),
        ),
        (
            chunked_head(CHECK, auth) + chunk(b'{"es') + chunk(b'me":1}') + b"0\r\n\r\n",
            expected("200 OK", b'{"persist":true,"system_id":"smscsim","error":""}'),
        ),
        (
            chunked_head(CHECK, auth) + chunk(b"x" * 600) + chunk(b"x" * 600) + b"0\r\n\r\n",
            expected(
                "413 Request Entity Too Large",
                b'{"error":"request body too large (limit 1024 bytes)"}',
            ),
        ),
        (
            # Half a body, then nothing: 408 at the body deadline (0.3 s here).
            request("POST", INFO, None, auth | {"Content-Length": "50"}) + b'{"message_id"',
            expected("408 Request Timeout", b'{"error":"request body not received in time"}'),
        ),
        (
            request("GET", "/healthy", version="1.0"),
            expected("200 OK", b'{"status":"ok"}', "connection: close"),
        ),
        (
            request("GET", "/healthy", headers={"Connection": "close"}),
            expected("200 OK", b'{"status":"ok"}', "connection: close"),
        ),
    ]
    for raw, want in cases:
        fast = await exchange(gw, raw, fast=True)
        assert fast == want, (raw[:80], fast)
        assert await exchange(gw, via_asgi(raw), fast=False) == want, raw[:80]
    assert sim.submits == 0

    # A send: same head on both paths, and a body of the same shape.
    answers = []
    for i, raw in enumerate((post(SEND, message(2), auth), via_asgi(post(SEND, message(3), auth)))):
        answer = await exchange(gw, raw, fast=i == 0)
        head, body = answer.split(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\ndate: X\r\nserver: uvicorn\r\n")
        assert head.endswith(b"\r\ncontent-type: application/json")
        assert f"content-length: {len(body)}\r\n".encode() in head
        answers.append(json.loads(body))
    assert [a["status"] for a in answers] == ["submitted", "submitted"]
    assert set(answers[0]) == set(answers[1]) and answers[0]["success"] is True
    sent = await exchange(gw, post(INFO, {"message_id": answers[0]["message_id"]}, auth), fast=True)
    assert status_of(sent) == 200 and body_of(sent)["message_id"] == answers[0]["message_id"]


async def test_requests_the_protocol_leaves_to_asgi(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, _sim, auth = gateway
    ok = expected("200 OK", b'{"status":"ok"}')
    assert await exchange(gw, request("GET", "/healthy?x=1"), fast=False) == ok
    assert await exchange(gw, request("GET", "/heal%74hy"), fast=False) == ok
    answer = await exchange(gw, request("POST", "/healthy", b""), fast=False)
    assert answer == expected("405 Method Not Allowed", b'{"error":"method not allowed"}')
    answer = await exchange(gw, request("GET", SEND), fast=False)
    assert status_of(answer) == 405
    assert status_of(await exchange(gw, request("GET", "/metrics"), fast=False)) == 200
    # HEAD: Starlette answers it from the GET route, without a body.
    conn = await Conn.open(gw.runtime.rest_port)
    conn.write(request("HEAD", "/healthy"))
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 15" in head
    await conn.close()
    # Expect: 100-continue goes the ASGI way, which sends the interim answer.
    conn = await Conn.open(gw.runtime.rest_port)
    conn.write(request("POST", CHECK, None, auth | {"Expect": "100-continue"})[:-2])
    conn.write(b"Content-Length: 10\r\n\r\n")
    interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    served = gw.runtime.fast_routes.served if gw.runtime.fast_routes else 0
    conn.write(b'{"esme":1}')
    assert status_of(await conn.answer()) == 200
    assert gw.runtime.fast_routes is not None and gw.runtime.fast_routes.served == served
    await conn.close()


async def test_keep_alive_pipelining_and_close(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, sim, auth = gateway
    routes = gw.runtime.fast_routes
    assert routes is not None
    port = gw.runtime.rest_port
    healthy = request("GET", "/healthy")

    # Keep-alive: fast and ASGI requests one after another on one connection.
    conn = await Conn.open(port)
    before = routes.served
    for raw, status in [
        (healthy, 200),
        (post(CHECK, {"esme": 1}, auth), 200),
        (request("GET", "/nope"), 404),
        (post(SEND, message(10), auth), 200),
        (healthy, 200),
        (post(INFO, {"message_id": "x"}, auth), 404),
        (request("GET", "/metrics"), 200),
        (healthy, 200),
    ]:
        conn.write(raw)
        answer = await conn.answer()
        assert status_of(answer) == status and b"connection: close" not in answer, answer
    assert routes.served - before == 6
    assert not await conn.closed(timeout=0.3)  # still open

    # Pipelined: all in one write, answered in order, though the send is slow (the
    # SMSC sits on it) and later requests are quick; the last one closes.
    sim.configure(resp_delay_ms=300)
    conn.write(
        healthy
        + post(SEND, message(11), auth)
        + request("GET", "/nope")
        + post(CHECK, {"esme": 9}, auth)
        + healthy
        + via_asgi(healthy)
        + request("GET", "/healthy", headers={"Connection": "close"})
    )
    answers = [await conn.answer() for _ in range(7)]
    assert [status_of(a) for a in answers] == [200, 200, 404, 404, 200, 200, 200]
    assert body_of(answers[1])["status"] == "submitted"
    assert body_of(answers[2]) == {"error": "not found"}
    assert body_of(answers[3]) == {"error": "unknown esme"}
    assert [b"connection: close" in a for a in answers] == [False] * 6 + [True]
    assert await conn.closed()
    await conn.close()
    sim.configure(resp_delay_ms=0)

    # Connection: close and HTTP/1.0 on a POST: answered, then closed.
    for raw in (
        request("POST", CHECK, b'{"esme":1}', auth | {"Connection": "close"}),
        request("POST", CHECK, b'{"esme":1}', auth, version="1.0"),
        request("GET", "/healthy", headers={"Connection": "keep-alive"}, version="1.0"),
    ):
        conn = await Conn.open(port)
        conn.write(raw)
        answer = await conn.answer()
        assert status_of(answer) == 200 and answer.split(b"\r\n\r\n")[0].endswith(
            b"\r\nconnection: close"
        )
        assert await conn.closed()
        await conn.close()


async def test_bodies_that_trickle_or_overflow(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, sim, auth = gateway
    routes = gw.runtime.fast_routes
    assert routes is not None
    conn = await Conn.open(gw.runtime.rest_port)
    # A chunked body in pieces, after the handler is already waiting for it.
    before = routes.served
    conn.write(chunked_head(SEND, auth))
    data = json.dumps(message(20)).encode()
    for i in range(0, len(data), 16):
        await asyncio.sleep(0.02)
        conn.write(chunk(data[i : i + 16]))
    conn.write(b"0\r\n\r\n")
    answer = await conn.answer()
    assert status_of(answer) == 200 and body_of(answer)["status"] == "submitted"
    # Over the limit by Content-Length: 413 before the body is read; the body that
    # follows is skipped and the connection serves the next request.
    conn.write(post(SEND, b"[" * 5000 + b"]" * 5000, auth))
    assert status_of(await conn.answer()) == 413
    conn.write(request("GET", "/healthy"))
    assert status_of(await conn.answer()) == 200
    # Chunked over the limit, in many pieces: 413 as soon as it is over.
    conn.write(chunked_head(CHECK, auth) + chunk(b" " * 1000))
    conn.write(chunk(b" " * 100))
    assert status_of(await conn.answer()) == 413
    conn.write(chunk(b" " * 5000) + b"0\r\n\r\n" + request("GET", "/healthy"))
    assert status_of(await conn.answer()) == 200
    assert routes.served - before == 5
    await conn.close()
    assert sim.submits == 1


async def test_a_send_whose_client_left_is_still_stored(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    """A client that hangs up before its answer (at once, or while the SMSC holds the
    submit) does not cancel the send: it is stored and sent, and a retry with the same
    transaction_id gets its answer; info shows the message."""
    gw, sim, auth = gateway
    port = gw.runtime.rest_port
    sim.configure(resp_delay_ms=300)
    for i, tx in enumerate(("left-at-once", "left-while-sending")):
        conn = await Conn.open(port)
        conn.write(post(SEND, message(30 + i, transaction_id=tx), auth))
        if tx == "left-while-sending":
            await eventually(lambda: sim.unanswered == 1)
        await conn.close()
        await eventually(lambda i=i: sim.submits == i + 1)
        retry = await exchange(gw, post(SEND, message(30 + i, transaction_id=tx), auth), fast=True)
        assert status_of(retry) == 200, retry
        sent = body_of(retry)
        assert sent["transaction_id"] == tx and sent["status"] in ("submitted", "queued")
        info = await exchange(gw, post(INFO, {"message_id": sent["message_id"]}, auth), fast=True)
        assert status_of(info) == 200 and body_of(info)["message_id"] == sent["message_id"]
        assert body_of(info)["transaction_id"] == tx
    assert sim.submits == 2  # the retries sent nothing again


async def test_graceful_shutdown_answers_an_in_flight_send(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, sim, auth = gateway
    routes = gw.runtime.fast_routes
    assert routes is not None
    sim.configure(resp_delay_ms=700)
    conn = await Conn.open(gw.runtime.rest_port)
    conn.write(post(SEND, message(40), auth))
    await eventually(lambda: sim.unanswered == 1)  # at the SMSC, its answer held back
    before = routes.served
    stopping = asyncio.create_task(gw.stop())
    answer = await conn.answer()
    assert status_of(answer) == 200 and body_of(answer)["status"] == "submitted"
    assert answer.split(b"\r\n\r\n")[0].endswith(b"\r\nconnection: close")
    assert routes.served == before + 1
    assert await conn.closed()
    await asyncio.wait_for(stopping, 15)
    await conn.close()


async def test_quota_headers_and_429_on_the_fast_path(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    sim = await make_sim()
    gw = await make_gateway(
        make_settings(tmp_path, [link_to(sim)], ratelimit=RateLimitSettings(app_rps=1, app_burst=1))
    )
    auth = await gw.user("quota@example.com")
    quota = ("x-ratelimit-limit: 1", "x-ratelimit-remaining: 0", "x-ratelimit-reset: 1")
    answer = await exchange(gw, post(CHECK, {"esme": 9}, auth), fast=True)
    assert answer == expected("404 Not Found", b'{"error":"unknown esme"}', *quota)
    limited = expected(
        "429 Too Many Requests", b'{"error":"rate limit exceeded"}', *quota, "retry-after: 1"
    )
    assert await exchange(gw, post(SEND, message(50), auth), fast=True) == limited
    assert await exchange(gw, via_asgi(post(SEND, message(50), auth)), fast=False) == limited
    assert sim.submits == 0
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_ratelimit_refused_total{level="app"} 2.0' in metrics


async def test_metrics_count_fast_answers(
    gateway: tuple[Gateway, SmscSimulator, dict[str, str]],
) -> None:
    gw, _sim, auth = gateway

    def count(route: str, status: int) -> float:
        text = metrics[0]
        pattern = rf'smsgateway_http_requests_total\{{route="{route}",status="{status}"\}} (\S+)'
        found = re.search(pattern, text)
        return float(found[1]) if found else 0.0

    metrics = [(await gw.http.get("/metrics")).text]
    before = (count("healthy", 200), count("sms_check", 404))
    await exchange(gw, request("GET", "/healthy"), fast=True)
    await exchange(gw, post(CHECK, {"esme": 9}, auth), fast=True)
    await exchange(gw, via_asgi(post(CHECK, {"esme": 9}, auth)), fast=False)
    metrics = [(await gw.http.get("/metrics")).text]
    assert (count("healthy", 200), count("sms_check", 404)) == (before[0] + 1, before[1] + 2)


async def test_global_limit_gates_the_fast_path_too(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    """The L1 limit meets every request first, whichever way it is served: the same
    429, the same headers, and its exempt paths stay exempt."""
    settings = make_settings(
        tmp_path,
        [],
        ratelimit=RateLimitSettings(global_rps=0.5, global_burst=1, global_exempt=["/healthy"]),
    )
    gw = await make_gateway(settings)
    assert gw.runtime.fast_routes is not None
    conn = await Conn.open(gw.runtime.rest_port)
    conn.write(post(CHECK, {"esme": 1}))
    assert status_of(await conn.answer()) == 401  # the one token: on to the handler
    served = gw.runtime.fast_routes.served
    conn.write(post(CHECK, {"esme": 1}))
    fast = await conn.answer()
    assert gw.runtime.fast_routes.served == served + 1  # answered by the fast path
    conn.write(via_asgi(post(CHECK, {"esme": 1})))
    asgi = await conn.answer()
    for answer in (fast, asgi):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert status_of(answer) == 429 and body == b'{"error":"rate limit exceeded"}'
        lines = head.split(b"\r\n")
        assert b"retry-after: 2" in lines and b"content-type: application/json" in lines
    assert sorted(header_lines(fast)) == sorted(header_lines(asgi))
    conn.write(request("GET", "/healthy"))
    assert status_of(await conn.answer()) == 200  # exempt
    await conn.close()


def header_lines(answer: bytes) -> list[bytes]:
    head = answer.partition(b"\r\n\r\n")[0]
    # date changes by the second; everything else must match
    return [line for line in head.split(b"\r\n")[1:] if not line.startswith(b"date:")]
