"""Shared helpers of the resilience tests: counting at the SMSC, reconciling what the
gateway accepted with what arrived there, and running the gateway as a real process.

Why count at the SMSC: "accepted means stored, stored means sent" is a claim about
the far end. Every helper here reads the simulator's own record of submits
(`SmscSimulator.messages`, kept large by `BIG_KEEP`), never the gateway's opinion.

Every message a test sends has its own destination number, so a submit the SMSC
received names the message it belongs to, and its UDH names the part.

(The subprocess helpers mirror tests/e2e/test_crash_recovery.py, which is a test
module in another directory and not importable from here.)
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gwkit import Gateway, eventually, link_to, make_settings
from smsgateway.smpp.text import decode_short_message
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "resilience-admin-key"
PASSWORD = "correct-horse-9"
BIG_KEEP = 200_000  # simulator keep_messages: every submit of a test stays countable


# -- what a test sends -------------------------------------------------------------


def destination(i: int) -> str:
    """One destination per message: the key that ties an SMSC submit to its message."""
    return f"+4915{i:08d}"


def text_for(i: int) -> str:
    """Every third message is long: 3 GSM parts or 3 UCS-2 parts; the rest are single."""
    if i % 6 == 0:
        return f"msg {i}: " + "long GSM text that needs three parts " * 11
    if i % 6 == 3:
        return f"msg {i}: Grüße 👋 " + "ещё немного текста " * 8
    return f"msg {i}: hello"


def parts_of(i: int) -> int:
    return 3 if i % 3 == 0 else 1


def send_body(i: int, esme: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "esme": esme,
        "source": "Resil",
        "destination": destination(i),
        "message": text_for(i),
        **extra,
    }


# -- what the SMSC got -------------------------------------------------------------


@dataclass
class Arrival:
    text: str
    at: float  # monotonic, when the simulator read it
    sim: int  # index of the simulator in the list given


def received(sims: Iterable[SmscSimulator]) -> dict[str, dict[int, list[Arrival]]]:
    """destination -> part seq -> every submit of that part an SMSC *accepted*.

    Refused submits (throttled, failed) and submits dropped unanswered by
    `drop_after` are left out: they did not reach the SMSC as a message.
    """
    out: dict[str, dict[int, list[Arrival]]] = defaultdict(lambda: defaultdict(list))
    for n, sim in enumerate(sims):
        for mid, _sid, pdu, at, status in list(sim.messages):
            if status != 0 or not mid:
                continue
            inbound = decode_short_message(
                pdu.short_message, pdu.data_coding, udhi=bool(pdu.esm_class & 0x40)
            )
            seq = inbound.concat.seq if inbound.concat else 1
            out["+" + pdu.destination_addr][seq].append(Arrival(inbound.text, at, n))
    return out


@dataclass
class Reconciliation:
    accepted: int
    parts: int
    lost: list[int] = field(default_factory=list)  # message indexes not complete
    duplicates: int = 0  # extra accepted copies of parts, over all messages
    duplicated: dict[tuple[int, int], list[Arrival]] = field(default_factory=dict)
    wrong_text: list[int] = field(default_factory=list)
    per_sim: dict[int, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"accepted {self.accepted} messages ({self.parts} parts); lost {len(self.lost)}; "
            f"duplicate part copies at the SMSC {self.duplicates}; per SMSC {self.per_sim}"
        )


def reconcile(sims: list[SmscSimulator], accepted: Iterable[int]) -> Reconciliation:
    """Compare the messages a gateway accepted (by index) with what the SMSCs got."""
    got = received(sims)
    indexes = sorted(accepted)
    rec = Reconciliation(accepted=len(indexes), parts=sum(parts_of(i) for i in indexes))
    for i in indexes:
        by_seq = got.get(destination(i), {})
        if sorted(by_seq) != list(range(1, parts_of(i) + 1)):
            rec.lost.append(i)
            continue
        if "".join(by_seq[s][0].text for s in sorted(by_seq)) != text_for(i):
            rec.wrong_text.append(i)
        for seq, copies in by_seq.items():
            if len({c.text for c in copies}) != 1:
                rec.wrong_text.append(i)
            if len(copies) > 1:
                rec.duplicates += len(copies) - 1
                rec.duplicated[(i, seq)] = copies
    for by_seq in got.values():
        for copies in by_seq.values():
            for c in copies:
                rec.per_sim[c.sim] = rec.per_sim.get(c.sim, 0) + 1
    return rec


def complete(sims: list[SmscSimulator], accepted: Iterable[int]) -> bool:
    return not reconcile(sims, accepted).lost


# -- the gateway over HTTP -----------------------------------------------------------


async def user_headers(
    http: httpx.AsyncClient, email: str = "resil@example.com", admin_key: str = ADMIN_KEY
) -> dict[str, str]:
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Admin-Key": admin_key},
    )
    assert r.status_code == 201, r.text
    app_id = r.json()["app_id"]
    r = await http.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD, "app_id": app_id}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}


async def infos(
    http: httpx.AsyncClient, headers: dict[str, str], message_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """message_id -> the gateway's /sms/info answer."""
    out: dict[str, dict[str, Any]] = {}
    for mid in message_ids:
        r = await http.post("/api/v1/sms/info", json={"message_id": mid}, headers=headers)
        assert r.status_code == 200, r.text
        out[mid] = r.json()
    return out


async def statuses(
    http: httpx.AsyncClient, headers: dict[str, str], message_ids: Iterable[str]
) -> dict[str, int]:
    """How many of the messages the gateway shows in each status."""
    counts: dict[str, int] = {}
    for info in (await infos(http, headers, message_ids)).values():
        counts[info["status"]] = counts.get(info["status"], 0) + 1
    return counts


# -- an in-process gateway (tests/conftest.py's make_sim / make_gateway) ---------------

SimFactory = Callable[..., Awaitable[SmscSimulator]]


async def start(
    tmp_path: Path,
    make_sim: SimFactory,
    make_gateway: Any,
    *,
    sim: dict[str, Any] | None = None,
    link: dict[str, Any] | None = None,
    budget: float = 0.3,
    wait_bound: bool = True,
) -> tuple[SmscSimulator, Gateway, dict[str, str]]:
    smsc = await make_sim(keep_messages=BIG_KEEP, **(sim or {}))
    settings = make_settings(
        tmp_path, [link_to(smsc, 1, **(link or {}))], admin_key=ADMIN_KEY, send_budget_s=budget
    )
    gw: Gateway = await make_gateway(settings)
    if wait_bound:
        await gw.bound()
    return smsc, gw, await user_headers(gw.http)


async def send_many(
    gw: Gateway, headers: dict[str, str], indexes: Iterable[int], esme: int = 1
) -> dict[int, dict[str, Any]]:
    """Send concurrently; every one must be accepted (200, success)."""

    async def one(i: int) -> tuple[int, dict[str, Any]]:
        r = await gw.http.post("/api/v1/sms/send", json=send_body(i, esme), headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["success"] is True, body
        return i, body

    return dict(await asyncio.gather(*(one(i) for i in indexes)))


async def settle(
    gw: Gateway,
    headers: dict[str, str],
    sims: list[SmscSimulator],
    sent: dict[int, dict[str, Any]],
    *,
    final: frozenset[str] = frozenset({"delivered"}),
    timeout: float = 30.0,
) -> Reconciliation:
    """Wait until everything accepted reached the SMSC and shows a final state."""
    await eventually(lambda: complete(sims, sent), timeout)
    ids = [b["message_id"] for b in sent.values()]

    async def final_state() -> bool:
        return set(await statuses(gw.http, headers, ids)) <= final

    await eventually(final_state, timeout)
    rec = reconcile(sims, sent)
    assert not rec.lost and not rec.wrong_text, rec
    print(f"\n{rec.line()}; gateway shows {await statuses(gw.http, headers, ids)}")
    return rec


def client(gw: Gateway, link_id: int = 1) -> Any:
    assert gw.runtime.router is not None
    return gw.runtime.router.links[link_id].client


# -- the gateway as a process ----------------------------------------------------------


def write_config(
    path: Path,
    data_dir: Path,
    links: list[dict[str, Any]],
    *,
    rest_port: int = 0,
    admin_key: str = ADMIN_KEY,
    send_budget_s: float = 0.3,
    extra: str = "",
) -> Path:
    """The README's TOML shape: cheap argon2, the given REST port, one block per link."""
    blocks = []
    for link in links:
        values = {
            "name": f"link-{link['id']}",
            "host": "127.0.0.1",
            "system_id": f"gw{link['id']}",
            "password": "pw",
            "limit_tps": 0,
            "window": 20,
            "response_timeout": 5.0,
            "enquire_link_interval": 30.0,
            **link,
        }
        lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
        blocks.append(f"[[smpp.links]]\n{lines}\n")
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
rest_port = {rest_port}
grpc_port = 0

[storage]
path = "{data_dir / "gw.db"}"

[auth]
admin_api_key = "{admin_key}"
argon2_time_cost = 1
argon2_memory_cost = 8

[ratelimit]
login_per_minute = 0

[messages]
send_budget_s = {send_budget_s}

{"".join(blocks)}
{extra}
""",
        encoding="utf-8",
    )
    return path
