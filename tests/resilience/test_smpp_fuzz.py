"""Hostile SMPP peers, both ways, for a bounded time with a seeded RNG.

- A raw TCP client against the simulator's SmscServer: binds (or not), then sends
  random bytes and mutated valid PDUs (bit flips, wrong lengths, wrong command ids,
  truncations, several PDUs glued together or split byte by byte).
- A tiny raw SMSC that the gateway's EsmeClient binds to, which answers the bind and
  then sends the same kind of garbage back.

Either side must answer each bad PDU with generic_nack or an error response, or close
the connection; never crash, never log an unhandled exception, keep serving new
connections, and not grow its memory across many reconnects (tracemalloc).

RESIL_SEED=N replays a run; RESIL_FUZZ_SECONDS sets the time per peer (default 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import struct
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator

import pytest

from gwkit import eventually
from smsgateway.smpp.constants import CommandId, CommandStatus, Tlv
from smsgateway.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Framer,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode,
    encode,
)
from smsgateway.smpp.session import ClientConfig, EsmeClient, LinkState
from smsgateway.smscsim.simulator import SmscSimulator

FUZZ_SECONDS = float(os.environ.get("RESIL_FUZZ_SECONDS", "2"))
SEED = int(os.environ.get("RESIL_SEED") or random.randrange(1, 1_000_000))
RESPONSE = 0x80000000
# From the SMSC side the peer may also *ask* things of us: receipts for a mutated
# submit it took, keepalives, an unbind.
SERVER_REQUESTS = {
    CommandId.DELIVER_SM,
    CommandId.ENQUIRE_LINK,
    CommandId.UNBIND,
    CommandId.DATA_SM,
}


def samples() -> list[Pdu]:
    """Valid PDUs of every kind both sides speak: the seeds the mutations start from."""
    return [
        BindTransceiver(system_id="fuzz", password="pw"),
        BindTransmitter(system_id="fuzz", password="pw", system_type="x"),
        BindReceiver(system_id="fuzz", password="pw"),
        SubmitSm(
            source_addr="Fuzz",
            destination_addr="4915112345678",
            registered_delivery=1,
            short_message=b"hello fuzz",
            tlvs={Tlv.USER_MESSAGE_REFERENCE: 7},
        ),
        SubmitSm(destination_addr="1", esm_class=0x40, short_message=b"\x05\x00\x03\x01\x02\x01x"),
        DeliverSm(
            source_addr="4915112345678",
            destination_addr="Fuzz",
            esm_class=0x04,
            short_message=b"id:abc stat:DELIVRD",
            tlvs={Tlv.RECEIPTED_MESSAGE_ID: "abc", Tlv.MESSAGE_STATE: 2},
        ),
        DataSm(destination_addr="123", tlvs={Tlv.MESSAGE_PAYLOAD: b"x" * 300}),
        QuerySm(message_id="abc", source_addr="Fuzz"),
        CancelSm(message_id="abc", source_addr="Fuzz", destination_addr="1"),
        ReplaceSm(message_id="abc", source_addr="Fuzz", short_message=b"new"),
        EnquireLink(),
        EnquireLinkResp(),
        SubmitSmResp(message_id="abc"),
        DeliverSmResp(),
        GenericNack(command_status=CommandStatus.ESME_RINVCMDID),
        Outbind(system_id="fuzz", password="pw"),
        AlertNotification(source_addr="1", esme_addr="2"),
        Unbind(),
        UnbindResp(),
    ]


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    if len(data) < 16:
        return bytes(data)
    struct.pack_into(">I", data, 12, rng.randrange(1, 0x7FFFFFFF))  # sequence number
    kind = rng.randrange(10)
    if kind == 0:  # random bytes, maybe with a plausible length prefix
        data = bytearray(rng.randbytes(rng.randrange(1, 64)))
        if rng.random() < 0.5 and len(data) >= 4:
            struct.pack_into(">I", data, 0, len(data))
    elif kind == 1:  # flip bits in the body
        for _ in range(rng.randrange(1, 6)):
            if len(data) > 16:
                data[rng.randrange(16, len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # any byte anywhere
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 3:  # a command_length that lies (short, long, huge, tiny)
        value = rng.choice([0, 1, 15, 16, len(data) - 1, len(data) + 7, 70_000, 0xFFFFFFFF])
        struct.pack_into(">I", data, 0, max(0, value))
    elif kind == 4:  # a command id nobody knows, or a response id for a request
        cid = rng.choice([rng.randrange(2**32), 0x21, 0x80000021, 0x80000000, 0x00000103])
        struct.pack_into(">I", data, 4, cid)
    elif kind == 5:  # a status on a request
        struct.pack_into(">I", data, 8, rng.randrange(2**32))
    elif kind == 6:  # truncated body, length kept consistent
        cut = rng.randrange(16, max(17, len(data)))
        data = data[:cut]
        struct.pack_into(">I", data, 0, len(data))
    elif kind == 7:  # junk after the body, counted in the length
        data += rng.randbytes(rng.randrange(1, 40))
        struct.pack_into(">I", data, 0, len(data))
    elif kind == 8:  # C strings without their NUL
        data = bytearray(b if b else 0x41 for b in data)
        struct.pack_into(">I", data, 0, len(data))
    # kind 9: the valid PDU itself (with a random sequence number)
    return bytes(data)


def check_frames(framer: Framer, data: bytes, got: list[int]) -> None:
    """Whatever the peer writes back must be well-formed SMPP: responses (generic_nack
    or a *_resp with a status), or the few requests a peer may make of us."""
    for frame in framer.feed(data):
        length, cid, _status, _seq = struct.unpack_from(">IIII", frame)
        assert length == len(frame) >= 16
        assert cid & RESPONSE or cid in SERVER_REQUESTS, hex(cid)
        if cid & RESPONSE:
            assert cid == CommandId.GENERIC_NACK or cid in PDU_CLASSES, hex(cid)
        got.append(cid)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """No log records while measuring: pytest keeps every record (and the PDUs and
    errors in its args) for its report, which would read as growth."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def unhandled(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Tracebacks logged by the SMPP stack: each one is a bug it caught in itself."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith("smsgateway") and r.exc_info and r.levelno >= logging.ERROR
    ]


async def raw_session(
    port: int, rng: random.Random, seeds: list[bytes], got: list[int], chunks: int = 25
) -> str:
    """One connection of garbage; how it ended ("closed" by the peer or by us)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = Framer(max_pdu=1 << 20)
    try:
        if rng.random() < 0.7:
            bind = encode(BindTransceiver(sequence_number=1, system_id="fuzz", password="pw"))
            writer.write(bind)
        for _ in range(rng.randrange(1, chunks)):
            chunk = b"".join(mutate(rng, seeds) for _ in range(rng.randrange(1, 4)))
            if rng.random() < 0.2:  # byte by byte
                for i in range(len(chunk)):
                    writer.write(chunk[i : i + 1])
                    await writer.drain()
            else:
                writer.write(chunk)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(65536), 0.01)
                if not data:
                    return "closed"
                check_frames(framer, data, got)
        return "done"
    except ConnectionError:
        return "closed"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_fuzzing_the_smsc_side_never_breaks_it(
    make_sim: Callable[..., Awaitable[SmscSimulator]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(SEED)
    print(f"\nRESIL_SEED={SEED}")
    sim = await make_sim(dlr_delay_ms=1.0, keep_messages=100)
    seeds = [encode(p) for p in samples()]
    got: list[int] = []
    endings: dict[str, int] = {}
    deadline = time.monotonic() + FUZZ_SECONDS
    sessions = 0
    while time.monotonic() < deadline:
        ending = await raw_session(sim.smpp_port, rng, seeds, got)
        endings[ending] = endings.get(ending, 0) + 1
        sessions += 1
    nacks = got.count(CommandId.GENERIC_NACK)
    print(f"{sessions} hostile sessions {endings}; answers {len(got)}, generic_nack {nacks}")
    assert sessions > 20 and nacks > 0
    assert unhandled(caplog) == []
    # Still serving: a well-behaved ESME binds and submits.
    client = EsmeClient(ClientConfig("127.0.0.1", sim.smpp_port, "good", "pw"))
    await client.start()
    try:
        await client.wait_bound(5)
        resp = await client.submit(SubmitSm(destination_addr="4915100000001", short_message=b"ok"))
        assert resp.command_status == 0 and resp.message_id
    finally:
        await client.stop()
    await eventually(lambda: not [s for s in sim.server.sessions if s.system_id == "fuzz"])


async def test_reconnect_cycles_do_not_grow_the_smsc_memory(
    make_sim: Callable[..., Awaitable[SmscSimulator]],
) -> None:
    sim = await make_sim(keep_messages=10)
    rng = random.Random(SEED)
    seeds = [encode(p) for p in (EnquireLink(), Unbind(), QuerySm(message_id="x"))]
    seeds += [struct.pack(">IIII", 16, 0x77, 0, 1), b"\x00\x00\x00\x03junk"]
    got: list[int] = []

    async def cycles(n: int) -> None:
        for _ in range(n):
            await raw_session(sim.smpp_port, rng, seeds, got, chunks=4)
        await eventually(lambda: not sim.server.sessions)

    await cycles(50)  # warm caches, the RNG
    with quiet_logs():
        gc.collect()
        tracemalloc.start(10)
        try:
            before = tracemalloc.take_snapshot()
            await cycles(200)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    keep = [tracemalloc.Filter(True, "*smsgateway*")]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "filename")
    growth = sum(d.size_diff for d in diff)
    print(f"\nSMSC side: 200 reconnects of garbage, smsgateway memory {growth:+d} bytes")
    assert growth < 64 * 1024, [str(d) for d in diff[:5]]


class GarbageSmsc:
    """A raw SMSC: answers the bind, then sends garbage and closes (or, when honest,
    answers submits properly)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seeds = [encode(p) for p in samples()]
        self.honest = False
        self.chunks = 20  # garbage writes per connection, at most
        self.connections = 0
        self.got: list[int] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        framer = Framer(max_pdu=1 << 20)
        rng = self.rng
        try:
            # The bind (and whatever follows in the same read).
            while True:
                data = await asyncio.wait_for(reader.read(65536), 5)
                if not data:
                    return
                frames = list(framer.feed(data))
                binds = [f for f in frames if struct.unpack_from(">I", f, 4)[0] == 0x09]
                if binds:
                    seq = struct.unpack_from(">I", binds[0], 12)[0]
                    resp = BindTransceiverResp(sequence_number=seq, system_id="garbage")
                    writer.write(encode(resp))
                    break
            if self.honest:
                await self.answer(reader, writer, framer)
                return
            for _ in range(rng.randrange(1, self.chunks)):
                writer.write(b"".join(mutate(rng, self.seeds) for _ in range(rng.randrange(1, 4))))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(reader.read(65536), 0.01)
                    if not data:
                        return
                    for frame in framer.feed(data):
                        length, cid = struct.unpack_from(">II", frame)
                        assert length == len(frame)
                        self.got.append(cid)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    async def answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framer: Framer
    ) -> None:
        while data := await reader.read(65536):
            for frame in framer.feed(data):
                pdu = decode(frame)
                if isinstance(pdu, SubmitSm):
                    resp = SubmitSmResp(sequence_number=pdu.sequence_number, message_id="ok-1")
                    writer.write(encode(resp))
                elif isinstance(pdu, EnquireLink):
                    writer.write(encode(EnquireLinkResp(sequence_number=pdu.sequence_number)))
                elif isinstance(pdu, Unbind):
                    writer.write(encode(UnbindResp(sequence_number=pdu.sequence_number)))


def fast_client(port: int, delivered: list[Pdu]) -> EsmeClient:
    return EsmeClient(
        ClientConfig(
            "127.0.0.1",
            port,
            "fuzz",
            "pw",
            reconnect_min=0.01,
            reconnect_max=0.02,
            response_timeout=0.5,
            bind_timeout=1.0,
        ),
        on_deliver=lambda pdu: delivered.append(pdu) and None,
    )


async def test_fuzzing_the_esme_side_never_breaks_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(SEED + 1)
    print(f"\nRESIL_SEED={SEED}")
    smsc = GarbageSmsc(rng)
    port = await smsc.start()
    delivered: list[Pdu] = []
    client = fast_client(port, delivered)
    await client.start()
    try:
        await asyncio.sleep(FUZZ_SECONDS)
        cycles = smsc.connections
        smsc.honest = True  # from the next connection on
        await eventually(lambda: smsc.connections > cycles and client.state is LinkState.BOUND)
        # The client still works against an SMSC that behaves.
        resp = await client.submit(SubmitSm(destination_addr="1", short_message=b"ok"))
        assert resp.message_id == "ok-1"
    finally:
        await client.stop()
        await smsc.stop()
    nacks = smsc.got.count(CommandId.GENERIC_NACK)
    print(
        f"{cycles} garbage sessions; the ESME answered {len(smsc.got)} PDUs "
        f"({nacks} generic_nack), passed {len(delivered)} deliver_sm up, "
        f"{client.disconnects} disconnects"
    )
    assert cycles > 20 and nacks > 0
    assert unhandled(caplog) == []


async def test_reconnect_cycles_do_not_grow_the_esme_memory() -> None:
    rng = random.Random(SEED + 2)
    smsc = GarbageSmsc(rng)
    smsc.seeds = [encode(p) for p in (EnquireLink(), Unbind(), SubmitSmResp(message_id="x"))]
    smsc.seeds.append(b"\x00\x00\x00\x03junk")
    smsc.chunks = 3
    port = await smsc.start()
    delivered: list[Pdu] = []
    client = fast_client(port, delivered)
    await client.start()
    try:
        await eventually(lambda: smsc.connections >= 30)  # warm up
        with quiet_logs():
            gc.collect()
            tracemalloc.start(10)
            try:
                before = tracemalloc.take_snapshot()
                start = smsc.connections
                await eventually(lambda: smsc.connections >= start + 120, timeout=60)
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
    finally:
        await client.stop()
        await smsc.stop()
    keep = [tracemalloc.Filter(True, "*smsgateway*")]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "filename")
    growth = sum(d.size_diff for d in diff)
    print(f"\nESME side: 120 reconnects to a garbage SMSC, smsgateway memory {growth:+d} bytes")
    assert growth < 64 * 1024, [str(d) for d in diff[:5]]
