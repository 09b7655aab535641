"""The simulator's HTTP control surface: a few JSON endpoints on a tiny HTTP/1.1 server.

Why hand-rolled instead of Starlette + uvicorn: the simulator runs inside test
processes and next to benchmarks, where a second server stack with its own event
loop policy, logging and start-up time is a cost with no benefit. Ten routes of
JSON over HTTP/1.1 with Content-Length (keep-alive supported, no chunked bodies)
fit in this file and start in microseconds.

Routes (JSON in, JSON out; errors as {"error": "..."}):
    GET  /stats                 counters, bound sessions, per-second counts
    GET  /messages?limit=N      the last N submits received (default 100)
    GET  /config                settings in force
    POST /config                change any runtime setting (see RUNTIME_SETTINGS)
    POST /mo                    {source, destination, text, system_id?, data_coding?}
    POST /reset                 zero the counters ({"config": true} also restores settings)
    POST /disconnect            drop every connection
    POST /unbind                unbind every session from the SMSC side
    GET  /pacing?since=&until=&window_ms=&raw=   arrival rate and burstiness
    GET  /health
`since`/`until` are time.monotonic() values, the same clock in every process of
the machine, so a benchmark can bracket its own run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..smpp.constants import status_name
from ..smpp.errors import SmppError

if TYPE_CHECKING:
    from .simulator import SmscSimulator

__all__ = ["ControlServer"]

log = logging.getLogger("smsgateway.smscsim.control")

MAX_HEADER = 16 * 1024
MAX_BODY = 1024 * 1024


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    """Serves the routes above for one simulator."""

    def __init__(self, sim: SmscSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True, limit=MAX_HEADER
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._clients):
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    # --- HTTP/1.1 ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._reply(writer, 431, {"error": "headers too large"}, False)
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    await self._reply(writer, 400, {"error": "bad request line"}, False)
                    return
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                keep_alive = version == "HTTP/1.1" and headers.get("connection", "") != "close"
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    await self._reply(writer, 413, {"error": "bad or oversized body"}, False)
                    return
                body = await reader.readexactly(length) if length else b""
                status, payload = await self._route(method, target, body)
                await self._reply(writer, status, payload, keep_alive)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    @staticmethod
    async def _reply(
        writer: asyncio.StreamWriter, status: int, payload: Any, keep_alive: bool
    ) -> None:
        body = json.dumps(payload).encode()
        reason = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()

    async def _route(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        routes = {
            ("GET", "/health"): self._health,
            ("GET", "/stats"): self._stats,
            ("GET", "/messages"): self._messages,
            ("GET", "/config"): self._get_config,
            ("POST", "/config"): self._post_config,
            ("POST", "/mo"): self._mo,
            ("POST", "/reset"): self._reset,
            ("POST", "/disconnect"): self._disconnect,
            ("POST", "/unbind"): self._unbind,
            ("GET", "/pacing"): self._pacing,
        }
        handler = routes.get((method, url.path))
        if handler is None:
            if any(path == url.path for _, path in routes):
                return 405, {"error": f"{method} not allowed on {url.path}"}
            return 404, {"error": f"no route {url.path}"}
        try:
            data: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        if method == "POST" and not isinstance(data, dict):
            return 400, {"error": "body must be a JSON object"}
        try:
            return 200, await handler(query, data)
        except _HttpError as exc:
            return exc.status, {"error": str(exc)}
        except Exception:
            log.exception("control %s %s failed", method, url.path)
            return 500, {"error": "internal error"}

    # --- handlers ------------------------------------------------------------------

    async def _health(self, query: dict[str, str], data: Any) -> Any:
        return {"ok": True}

    async def _stats(self, query: dict[str, str], data: Any) -> Any:
        return self.sim.stats()

    async def _messages(self, query: dict[str, str], data: Any) -> Any:
        limit = _number(query, "limit", 100) or 0
        return {"messages": self.sim.recent_messages(int(limit))}

    async def _get_config(self, query: dict[str, str], data: Any) -> Any:
        return self.sim.settings()

    async def _post_config(self, query: dict[str, str], data: dict[str, Any]) -> Any:
        try:
            return self.sim.configure(**data)
        except ValueError as exc:
            raise _HttpError(400, str(exc)) from exc

    async def _mo(self, query: dict[str, str], data: dict[str, Any]) -> Any:
        source, destination = data.get("source"), data.get("destination")
        text, system_id, coding = data.get("text"), data.get("system_id"), data.get("data_coding")
        if not isinstance(source, str) or not isinstance(destination, str):
            raise _HttpError(400, "source and destination are required strings")
        if not isinstance(text, str):
            raise _HttpError(400, "text is a required string")
        if system_id is not None and not isinstance(system_id, str):
            raise _HttpError(400, "system_id must be a string")
        if coding is not None and (isinstance(coding, bool) or not isinstance(coding, int)):
            raise _HttpError(400, "data_coding must be an integer")
        try:
            resp = await self.sim.push_mo(
                source, destination, text, system_id=system_id, data_coding=coding
            )
        except SmppError as exc:
            raise _HttpError(409, str(exc)) from exc
        return {"status": resp.command_status, "status_name": status_name(resp.command_status)}

    async def _reset(self, query: dict[str, str], data: dict[str, Any]) -> Any:
        self.sim.reset(config=bool(data.get("config")))
        return {"reset": True}

    async def _disconnect(self, query: dict[str, str], data: dict[str, Any]) -> Any:
        return {"dropped": self.sim.disconnect_all()}

    async def _unbind(self, query: dict[str, str], data: dict[str, Any]) -> Any:
        return {"unbound": await self.sim.unbind_all()}

    async def _pacing(self, query: dict[str, str], data: Any) -> Any:
        since = _number(query, "since", 0.0)
        until = _number(query, "until", None)
        window_ms = _number(query, "window_ms", 100.0)
        if not window_ms or window_ms <= 0:
            raise _HttpError(400, "window_ms must be > 0")
        raw = query.get("raw", "0") not in ("0", "false", "")
        return self.sim.pacing(since or 0.0, until, window_ms, raw)


def _number(query: dict[str, str], name: str, default: float | None) -> float | None:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise _HttpError(400, f"{name} must be a number") from exc
