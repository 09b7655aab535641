"""Interoperability with two SMPP stacks that share no code with ours.

1. smpplib (Python, synchronous, run in a thread) drives our simulator: bind, submit,
   receive the receipt; and its encoded submit_sm is read field by field by our
   decoder, both from the bytes it generates and from what our SMSC recorded.
2. The npm `smpp` package runs an SMSC under Node.js (tests/interop/node/smsc.js):
   our EsmeClient binds, submits, gets the receipt, keeps the link alive and
   unbinds, while node prints every field it decoded from our bytes.

Both are mandatory: a missing `node` fails the test instead of skipping it. The
node dependencies are installed with `npm ci` on first use (see the Makefile's
setup for the same command).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.consts

from smsgateway.smpp.constants import MessageState, Tlv
from smsgateway.smpp.pdu import DeliverSm, SubmitSm, decode
from smsgateway.smpp.receipt import parse_receipt
from smsgateway.smpp.session import LinkState

NODE_DIR = Path(__file__).resolve().parent.parent / "interop" / "node"

UDH = bytes([0x05, 0x00, 0x03, 0x2A, 0x02, 0x01])  # concatenation: ref 42, part 1 of 2
TEXT = "Grüße € ok"

# --- smpplib -----------------------------------------------------------------------------

SMPPLIB_FIELDS: dict[str, Any] = {
    "service_type": "CMT",
    "source_addr_ton": 5,
    "source_addr_npi": 0,
    "source_addr": "Brand",
    "dest_addr_ton": 1,
    "dest_addr_npi": 1,
    "destination_addr": "447700900123",
    "esm_class": 0x40,
    "protocol_id": 0x7F,
    "priority_flag": 2,
    "schedule_delivery_time": "261231235959000+",
    "validity_period": "000001000000000R",
    "registered_delivery": 1,
    "replace_if_present_flag": 1,
    "data_coding": 8,
    "sm_default_msg_id": 3,
}


def run_smpplib(port: int) -> dict[str, Any]:
    """Bind, submit, wait for the receipt; returns what smpplib saw and sent."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    receipts: list[Any] = []
    resps: list[Any] = []
    client.set_message_received_handler(lambda pdu: receipts.append(pdu))
    client.set_message_sent_handler(lambda pdu: resps.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="smpplib", password="pw")
        submit = client.send_message(
            **SMPPLIB_FIELDS,
            short_message=UDH + TEXT.encode("utf-16-be"),
            user_message_reference=4242,
            source_port=1234,
            destination_port=5678,
        )
        for _ in range(20):
            if resps and receipts:
                break
            client.read_once()
        client.unbind()
        return {"submit": submit, "frame": submit.generate(), "resps": resps, "receipts": receipts}
    finally:
        client.disconnect()


def check_submit(pdu: Any) -> None:
    assert isinstance(pdu, SubmitSm)
    for name, value in SMPPLIB_FIELDS.items():
        assert getattr(pdu, name) == value, name
    assert pdu.short_message == UDH + TEXT.encode("utf-16-be")
    assert pdu.short_message[len(UDH) :].decode("utf-16-be") == TEXT
    assert pdu.tlvs == {
        Tlv.USER_MESSAGE_REFERENCE: 4242,
        Tlv.SOURCE_PORT: 1234,
        Tlv.DESTINATION_PORT: 5678,
    }


async def test_smpplib_against_our_simulator(make_sim: Any, eventually: Any) -> None:
    sim = await make_sim(dlr_delay_ms=10)
    result = await asyncio.wait_for(asyncio.to_thread(run_smpplib, sim.smpp_port), 30)

    # smpplib got an id and the matching receipt
    (resp,) = result["resps"]
    assert resp.status == smpplib.consts.SMPP_ESME_ROK
    message_id = resp.message_id.decode() if isinstance(resp.message_id, bytes) else resp.message_id
    (receipt,) = result["receipts"]
    assert receipt.esm_class == 0x04
    receipted = receipt.receipted_message_id
    assert (receipted.decode() if isinstance(receipted, bytes) else receipted) == message_id
    assert receipt.message_state == MessageState.DELIVERED
    parsed = parse_receipt(receipt.short_message)
    assert parsed is not None and parsed.message_id == message_id
    # the receipt's text: field is the first 20 characters, non-ASCII as "?"
    assert parsed.text == "Gr??e ? ok"

    # our decoder reads every field smpplib encoded, from its bytes...
    frame = result["frame"]
    check_submit(decode(frame))
    # ...and from the wire, as our SMSC recorded it
    (recorded,) = [m for m in sim.messages if m[0] == message_id]
    check_submit(recorded[2])
    assert sim.by_system_id == {"smpplib": 1}
    await eventually(lambda: sim.closes.get("unbound by ESME") == 1)


# --- node smpp ---------------------------------------------------------------------------


def ensure_node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are required for the interop test (apt-get install nodejs)")
    if not (NODE_DIR / "node_modules" / "smpp").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
        )
    return node


class NodeSmsc:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self, node: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            node,
            "smsc.js",
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        first = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
        assert first["event"] == "listening"
        self.port = first["port"]
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.events.append(json.loads(line))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


@pytest.fixture
async def node_smsc() -> Any:
    node = await asyncio.to_thread(ensure_node)
    smsc = NodeSmsc()
    await smsc.start(node)
    yield smsc
    await smsc.stop()


async def test_our_client_against_node_smpp(
    node_smsc: NodeSmsc, make_client: Any, eventually: Any
) -> None:
    got: list[Any] = []
    client = await make_client(
        node_smsc.port,
        system_id="ours",
        password="secret",
        on_deliver=got.append,
        enquire_link_interval=0.2,
    )
    assert client.remote_system_id == "nodesmsc"
    (bind,) = node_smsc.named("bind_transceiver")
    assert bind["system_id"] == "ours" and bind["password"] == "secret"
    assert bind["interface_version"] == 0x34

    submit = SubmitSm(
        service_type="CMT",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Brand",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0,
        protocol_id=0x7F,
        priority_flag=2,
        validity_period="261231235959000+",
        registered_delivery=1,
        replace_if_present_flag=1,
        data_coding=8,
        sm_default_msg_id=3,
        short_message=TEXT.encode("utf-16-be"),
        tlvs={Tlv.USER_MESSAGE_REFERENCE: 4242, Tlv.SOURCE_PORT: 1234},
    )
    resp = await client.submit(submit)

    (seen,) = await eventually(lambda: node_smsc.named("submit_sm"))
    assert seen["message_id"] == resp.message_id
    fields = seen["fields"]
    assert fields["command_id"] == 0x00000004
    assert fields["sequence_number"] == submit.sequence_number
    for name in (
        "service_type",
        "source_addr_ton",
        "source_addr_npi",
        "source_addr",
        "dest_addr_ton",
        "dest_addr_npi",
        "destination_addr",
        "esm_class",
        "protocol_id",
        "priority_flag",
        "registered_delivery",
        "replace_if_present_flag",
        "data_coding",
        "sm_default_msg_id",
    ):
        assert fields[name] == getattr(submit, name), name
    assert fields["validity_period"] == "2026-12-31T23:59:59.000Z"
    assert fields["short_message"] == {"message": TEXT}
    assert fields["user_message_reference"] == 4242
    assert fields["source_port"] == 1234

    # node's receipt, decoded by us
    await eventually(lambda: got)
    (receipt,) = got
    assert isinstance(receipt, DeliverSm)
    assert receipt.esm_class == 0x04
    assert receipt.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == resp.message_id
    assert receipt.tlvs[Tlv.MESSAGE_STATE] == MessageState.DELIVERED
    parsed = parse_receipt(receipt.short_message, receipt.tlvs)
    assert parsed is not None and parsed.message_id == resp.message_id
    (ack,) = await eventually(lambda: node_smsc.named("deliver_sm_resp"))
    assert ack["command_status"] == 0

    # keepalive both ways understood, then a clean unbind
    await eventually(lambda: node_smsc.named("enquire_link"))
    assert client.state is LinkState.BOUND
    await client.stop()
    await eventually(lambda: node_smsc.named("unbind"))
    await eventually(lambda: node_smsc.named("close"))
    assert not node_smsc.named("error")


def test_node_dir_is_pinned() -> None:
    package = json.loads((NODE_DIR / "package.json").read_text())
    assert package["dependencies"]["smpp"] == "0.5.1"
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/smpp"]["version"] == "0.5.1"
