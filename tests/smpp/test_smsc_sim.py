"""The SMSC side and the simulator: binds, faults, receipts, recording, HTTP control, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
from typing import Any

import httpx
import pytest

from smsgateway.smpp.constants import CommandId, CommandStatus, MessageState, Tlv
from smsgateway.smpp.errors import CommandError, SessionClosed
from smsgateway.smpp.pdu import (
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    Framer,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    decode,
    encode,
)
from smsgateway.smpp.session import LinkState
from smsgateway.smpp.smsc import SmscHandler, SmscServer, SmscSession
from smsgateway.smscsim import cli as sim_cli
from smsgateway.smscsim.simulator import SimulatorConfig, SmscSimulator, pacing_summary


def sms(dest: str = "447700900001", text: bytes = b"hello", **kw: Any) -> SubmitSm:
    return SubmitSm(source_addr="12345", destination_addr=dest, short_message=text, **kw)


# --- faults ------------------------------------------------------------------------------


async def test_fail_rate_refuses_and_sends_no_receipt(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(fail_rate=1.0, dlr_delay_ms=0)
    got: list[Any] = []
    client = await make_client(sim.smpp_port, on_deliver=got.append)
    with pytest.raises(CommandError) as info:
        await client.submit(sms(registered_delivery=1))
    assert info.value.status == CommandStatus.ESME_RSUBMITFAIL
    sim.configure(fail_status=CommandStatus.ESME_RINVDSTADR)
    with pytest.raises(CommandError) as info:
        await client.submit(sms(registered_delivery=1))
    assert info.value.status == CommandStatus.ESME_RINVDSTADR
    await asyncio.sleep(0.05)
    assert got == [] and sim.failed == 2 and sim.receipts_sent == 0
    assert client.errors == 2 and client.last_error == "ESME_RINVDSTADR"


async def test_undeliverable_prefix_and_receipt_stats(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=0, undeliverable_prefix="4477009")
    sim.configure(receipt_stats={"4477008": "EXPIRED"})
    got: list[DeliverSm | DataSm] = []
    client = await make_client(sim.smpp_port, on_deliver=got.append)
    await client.submit(sms("447700900001", registered_delivery=1))
    await client.submit(sms("447700800001", registered_delivery=1))
    await client.submit(sms("447711100001", registered_delivery=2))  # delivered: no receipt
    await eventually(lambda: len(got) == 2)
    states = {p.source_addr: p.tlvs[Tlv.MESSAGE_STATE] for p in got}
    assert states == {
        "447700900001": MessageState.UNDELIVERABLE,
        "447700800001": MessageState.EXPIRED,
    }
    texts = {p.source_addr: p.short_message for p in got}
    assert b"stat:UNDELIV" in texts["447700900001"]
    assert b"stat:EXPIRED" in texts["447700800001"]


async def test_refuse_binds(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(refuse_binds=True)
    client = await make_client(sim.smpp_port, bound=False)
    with pytest.raises(TimeoutError):
        await client.wait_bound(0.3)
    assert client.last_bind_status == CommandStatus.ESME_RBINDFAIL
    sim.configure(refuse_binds=False)
    await client.wait_bound(5)


async def test_decimal_ids_and_duplicates(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(id_format="dec")
    client = await make_client(sim.smpp_port)
    first = await client.submit(sms())
    second = await client.submit(sms())
    assert first.message_id.isdigit() and int(second.message_id) == int(first.message_id) + 1
    assert sim.duplicates == 1
    assert sim.by_system_id == {"tester": 2}


async def test_receipt_goes_to_a_receiver_of_the_same_system_id(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=0)
    tx = await make_client(sim.smpp_port, bind_mode="transmitter")
    got: list[Any] = []
    await make_client(sim.smpp_port, bind_mode="receiver", on_deliver=got.append)
    other: list[Any] = []
    await make_client(
        sim.smpp_port, bind_mode="receiver", system_id="someone-else", on_deliver=other.append
    )
    resp = await tx.submit(sms(registered_delivery=1))
    await eventually(lambda: got)
    assert got[0].tlvs[Tlv.RECEIPTED_MESSAGE_ID] == resp.message_id
    assert other == []


async def test_receipts_are_held_until_a_receiver_binds(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=0)
    tx = await make_client(sim.smpp_port, bind_mode="transmitter")
    await tx.submit(sms(registered_delivery=1))
    await eventually(lambda: sim.stats()["receipts_held"] == 1)
    got: list[Any] = []
    await make_client(sim.smpp_port, bind_mode="receiver", on_deliver=got.append)
    await eventually(lambda: got)
    assert sim.receipts_acked == 1 and sim.stats()["receipts_held"] == 0


async def test_records_messages_and_arrivals(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim()
    client = await make_client(sim.smpp_port)
    await client.submit(
        sms("4915112345678", b"\x00\x01abc", data_coding=8, tlvs={Tlv.USER_MESSAGE_REFERENCE: 7})
    )
    (msg,) = sim.recent_messages(10)
    assert msg["destination_addr"] == "4915112345678"
    assert msg["short_message"] == "0001616263"
    assert msg["data_coding"] == 8 and msg["status"] == "OK" and msg["message_id"]
    assert msg["tlvs"] == {"user_message_reference": 7}
    assert len(sim.arrivals) == 1 and sim.submits == 1
    assert sum(sim.per_second.values()) == 1


def test_pacing_summary_uses_sliding_windows() -> None:
    even = [i * 0.01 for i in range(100)]  # 100/s, evenly
    summary = pacing_summary(even)
    assert summary["count"] == 100 and summary["max_in_window"] == 10
    assert summary["tps"] == pytest.approx(100.0)
    # 8 at the end of one fixed slice and 8 at the start of the next: 16 in 100 ms
    bursty = [0.09 + i * 0.001 for i in range(8)] + [0.1 + i * 0.001 for i in range(8)]
    assert pacing_summary(bursty)["max_in_window"] == 16
    assert pacing_summary([])["count"] == 0


def test_configure_validates() -> None:
    sim = SmscSimulator(SimulatorConfig(http_port=None))
    with pytest.raises(ValueError):
        sim.configure(fail_rate=2)
    with pytest.raises(ValueError):
        sim.configure(port=1)  # not a runtime setting
    with pytest.raises(ValueError):
        sim.configure(receipt_stats={"44": "NOPE"})
    assert sim.config.fail_rate == 0.0
    sim.configure(fail_rate=0.5, throttle_tps=10)
    sim.reset(config=True)
    assert sim.config.fail_rate == 0.0 and sim.config.throttle_tps == 0.0


# --- HTTP control ------------------------------------------------------------------------


async def test_http_control_surface(make_sim: Any, make_client: Any, eventually: Any) -> None:
    sim = await make_sim(http_port=0)
    got: list[Any] = []
    client = await make_client(sim.smpp_port, on_deliver=got.append)
    base = f"http://127.0.0.1:{sim.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        assert (await http.get("/health")).json() == {"ok": True}
        before = (await http.get("/stats")).json()["monotonic"]
        for i in range(3):
            await client.submit(sms(str(i)))
        stats = (await http.get("/stats")).json()
        assert stats["submits"] == 3 and stats["by_system_id"] == {"tester": 3}
        assert stats["sessions"][0]["bind_mode"] == "transceiver"
        messages = (await http.get("/messages", params={"limit": 2})).json()["messages"]
        assert [m["destination_addr"] for m in messages] == ["1", "2"]
        pacing = (await http.get("/pacing", params={"since": before, "raw": 1})).json()
        assert pacing["count"] == 3 and len(pacing["timestamps"]) == 3

        r = await http.post("/config", json={"fail_rate": 1.0, "resp_delay_ms": 1})
        assert r.status_code == 200 and r.json()["fail_rate"] == 1.0
        with pytest.raises(CommandError):
            await client.submit(sms())
        bad = await http.post("/config", json={"fail_rate": "lots"})
        assert bad.status_code == 400 and "fail_rate" in bad.json()["error"]
        assert (await http.post("/config", content=b"{nope")).status_code == 400
        assert (await http.get("/config")).json()["resp_delay_ms"] == 1

        mo = await http.post("/mo", json={"source": "4477", "destination": "123", "text": "Hi"})
        assert mo.status_code == 200 and mo.json()["status_name"] == "ESME_ROK"
        assert got[-1].short_message == b"Hi"
        nobody = await http.post(
            "/mo", json={"source": "1", "destination": "2", "text": "x", "system_id": "ghost"}
        )
        assert nobody.status_code == 409
        assert (await http.post("/mo", json={"text": "x"})).status_code == 400

        assert (await http.post("/reset", json={"config": True})).json() == {"reset": True}
        assert sim.submits == 0 and sim.config.fail_rate == 0.0

        assert (await http.post("/disconnect")).json() == {"dropped": 1}
        await eventually(lambda: client.state is LinkState.CONNECTING or client.disconnects)
        await client.wait_bound(5)
        assert (await http.post("/unbind")).json() == {"unbound": 1}
        await eventually(lambda: sim.binds == 2)

        assert (await http.get("/nowhere")).status_code == 404
        assert (await http.delete("/stats")).status_code == 405
        assert (await http.get("/pacing", params={"since": "x"})).status_code == 400


# --- SMSC side, directly -----------------------------------------------------------------


class Recorder(SmscHandler):
    def __init__(self) -> None:
        self.bound: list[SmscSession] = []
        self.submits: list[SubmitSm] = []

    def session_bound(self, session: SmscSession) -> None:
        self.bound.append(session)

    def submit_sm(self, session: SmscSession, pdu: SubmitSm) -> Any:
        self.submits.append(pdu)

        async def later() -> SubmitSmResp:
            await asyncio.sleep(0)
            return SubmitSmResp(sequence_number=pdu.sequence_number, message_id="async-1")

        return later()


async def test_smsc_server_async_authenticator_handler_and_deliver(
    make_client: Any, eventually: Any
) -> None:
    handler = Recorder()

    async def auth(session: SmscSession, bind: Any) -> int:
        await asyncio.sleep(0)
        return 0 if bind.password == "pw" else CommandStatus.ESME_RINVPASWD

    server = SmscServer(handler, authenticator=auth, system_id="unit", deliver_window=2)
    port = await server.start()
    try:
        got: list[Any] = []
        client = await make_client(port, on_deliver=got.append)
        assert client.remote_system_id == "unit"
        assert (await client.submit(sms())).message_id == "async-1"
        (session,) = handler.bound
        answers = await asyncio.gather(
            *(session.deliver(DeliverSm(source_addr=str(i), short_message=b"mo")) for i in range(5))
        )
        assert all(a.command_status == 0 for a in answers) and len(got) == 5
        # data_sm is not implemented by this handler: the default answer
        resp = await client.request(DataSm(destination_addr="1"))
        assert resp.command_status == CommandStatus.ESME_RINVCMDID
    finally:
        await server.stop()
    await eventually(lambda: not server.sessions)


def _raw_connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_pdus(sock: socket.socket, framer: Framer, count: int) -> list[Any]:
    pdus: list[Any] = []
    while len(pdus) < count:
        data = sock.recv(65536)
        if not data:
            break
        pdus.extend(decode(frame) for frame in framer.feed(data))
    return pdus


async def test_garbage_from_an_esme_is_nacked_then_closed(make_sim: Any) -> None:
    sim = await make_sim()

    def talk() -> tuple[list[Any], bytes]:
        framer = Framer()
        with _raw_connect(sim.smpp_port) as sock:
            sock.sendall(encode(BindTransmitter(sequence_number=1, system_id="raw")))
            replies = _read_pdus(sock, framer, 1)
            sock.sendall(struct.pack(">IIII", 16, 0x01234567, 0, 2))  # unknown command
            sock.sendall(encode(EnquireLink(sequence_number=3)))
            replies += _read_pdus(sock, framer, 2)
            sock.sendall(struct.pack(">IIII", 8, CommandId.SUBMIT_SM, 0, 4))  # bad length
            replies += _read_pdus(sock, framer, 1)
            rest = sock.recv(100)  # b"" once the SMSC has closed
        return replies, rest

    replies, rest = await asyncio.to_thread(talk)
    bind_resp, nack, link_resp, last = replies
    assert isinstance(bind_resp, BindTransmitterResp) and bind_resp.command_status == 0
    assert isinstance(nack, GenericNack) and nack.sequence_number == 2
    assert nack.command_status == CommandStatus.ESME_RINVCMDID
    assert isinstance(link_resp, EnquireLinkResp) and link_resp.sequence_number == 3
    assert isinstance(last, GenericNack) and last.command_status == CommandStatus.ESME_RINVCMDLEN
    assert rest == b""
    # and the simulator is fine
    assert sim.binds == 1


async def test_submit_before_bind_is_refused(make_sim: Any) -> None:
    sim = await make_sim()

    def talk() -> Any:
        with _raw_connect(sim.smpp_port) as sock:
            sock.sendall(encode(sms()))
            return _read_pdus(sock, Framer(), 1)[0]

    resp = await asyncio.to_thread(talk)
    assert isinstance(resp, SubmitSmResp)
    assert resp.command_status == CommandStatus.ESME_RINVBNDSTS
    assert sim.submits == 0


async def test_sessions_that_never_bind_are_closed(make_sim: Any) -> None:
    sim = await make_sim()
    sim.server.bind_timeout = 0.1

    def talk() -> bytes:
        with _raw_connect(sim.smpp_port) as sock:
            return sock.recv(100)

    assert await asyncio.to_thread(talk) == b""


async def test_mo_without_receiver_raises(make_sim: Any) -> None:
    sim = await make_sim()
    with pytest.raises(SessionClosed):
        await sim.push_mo("1", "2", "nobody home")


# --- command line ------------------------------------------------------------------------


def test_cli_registers_smsc_sim_with_its_options() -> None:
    from smsgateway.cli import build_parser

    args = build_parser().parse_args(["smsc-sim"])
    assert args.handler is sim_cli.run
    assert (args.host, args.port, args.http_port) == ("127.0.0.1", 2775, 2776)
    assert (args.dlr_delay_ms, args.fail_rate, args.throttle_tps) == (50.0, 0.0, 0.0)
    assert args.system_id is None and args.password is None
    args = build_parser().parse_args(
        ["smsc-sim", "--system-id", "ID", "--password", "PW", "--fail-rate", "0.5"]
    )
    assert (args.system_id, args.password, args.fail_rate) == ("ID", "PW", 0.5)


def test_cli_process_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "smsc-sim", "--port", "0", "--http-port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = ""
        for line in proc.stderr:
            if "listening" in line:
                break
        match = re.search(r"smpp=[\d.]+:(\d+) http=[\d.]+:(\d+)", line)
        assert match, line
        http_port = int(match.group(2))
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=5) as http:
            assert http.get("/stats").json()["submits"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stats_are_json_serialisable() -> None:
    sim = SmscSimulator(SimulatorConfig(http_port=None))
    json.dumps(sim.stats())
    json.dumps(sim.settings())
