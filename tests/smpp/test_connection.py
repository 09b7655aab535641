"""The sans-I/O protocol core: state machine, refusals, framing, sequence numbers, window."""

from __future__ import annotations

import struct

import pytest

from smsgateway.smpp.connection import (
    MAX_SEQUENCE,
    BadPdu,
    Connection,
    ConnectionBroken,
    ConnectionState,
    LocalProtocolError,
    Role,
    WindowFull,
)
from smsgateway.smpp.constants import CommandId, CommandStatus
from smsgateway.smpp.pdu import (
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode,
    encode,
)


def pair(bind: Pdu | None = None, **esme_kwargs: int) -> tuple[Connection, Connection]:
    """An ESME and an SMSC connection, bound to each other in memory."""
    esme = Connection(Role.ESME, **esme_kwargs)  # type: ignore[arg-type]
    smsc = Connection(Role.SMSC)
    request = bind or BindTransceiver(system_id="esme", password="pw")
    (event,) = smsc.receive_data(esme.send(request))
    assert isinstance(event, type(request))
    (resp,) = esme.receive_data(smsc.send(event.response(system_id="smsc")))
    assert resp.command_status == 0  # type: ignore[union-attr]
    return esme, smsc


def only(events: list) -> object:
    assert len(events) == 1, events
    return events[0]


def test_bind_transceiver_both_roles() -> None:
    esme = Connection(Role.ESME)
    smsc = Connection(Role.SMSC)
    assert esme.state is smsc.state is ConnectionState.OPEN
    data = esme.send(BindTransceiver(system_id="esme", password="pw"))
    bind = only(smsc.receive_data(data))
    assert isinstance(bind, BindTransceiver)
    assert bind.sequence_number == 1 and bind.system_id == "esme"
    assert smsc.state is ConnectionState.OPEN  # not bound until it answers
    assert esme.outstanding == 1
    resp = only(esme.receive_data(smsc.send(bind.response(system_id="smsc"))))
    assert isinstance(resp, BindTransceiverResp)
    assert esme.state is smsc.state is ConnectionState.BOUND_TRX
    assert esme.remote_system_id == "smsc" and smsc.remote_system_id == "esme"
    assert esme.outstanding == 0
    assert esme.can_transmit and smsc.can_receive


@pytest.mark.parametrize(
    ("bind", "state"),
    [
        (BindTransmitter(system_id="a"), ConnectionState.BOUND_TX),
        (BindReceiver(system_id="a"), ConnectionState.BOUND_RX),
        (BindTransceiver(system_id="a"), ConnectionState.BOUND_TRX),
    ],
)
def test_bind_modes(bind: Pdu, state: ConnectionState) -> None:
    esme, smsc = pair(bind)
    assert esme.state is smsc.state is state
    assert esme.bind_mode is state


def test_refused_bind_stays_open() -> None:
    esme = Connection(Role.ESME)
    smsc = Connection(Role.SMSC)
    bind = only(smsc.receive_data(esme.send(BindTransmitter(system_id="a", password="bad"))))
    resp = only(esme.receive_data(smsc.send(bind.response(CommandStatus.ESME_RINVPASWD))))
    assert resp.command_status == CommandStatus.ESME_RINVPASWD
    assert esme.state is smsc.state is ConnectionState.OPEN
    # and it may try again
    esme.send(BindTransmitter(system_id="a", password="good"))


def test_generic_nack_to_bind_stays_open() -> None:
    esme = Connection(Role.ESME)
    data = esme.send(BindTransceiver())
    seq = decode(data).sequence_number
    nack = GenericNack(sequence_number=seq, command_status=CommandStatus.ESME_RINVCMDID)
    only(esme.receive_data(encode(nack)))
    assert esme.state is ConnectionState.OPEN and esme.outstanding == 0


def test_second_bind_is_already_bound() -> None:
    _esme, smsc = pair()
    again = encode(BindTransceiver(sequence_number=77, system_id="esme"))
    event = only(smsc.receive_data(again))
    assert isinstance(event, BadPdu)
    reply = decode(event.reply)
    assert isinstance(reply, BindTransceiverResp)
    assert reply.command_status == CommandStatus.ESME_RALYBND and reply.sequence_number == 77


def test_submit_before_bind_is_refused_with_invbndsts() -> None:
    smsc = Connection(Role.SMSC)
    event = only(smsc.receive_data(encode(SubmitSm(sequence_number=5, destination_addr="1"))))
    assert isinstance(event, BadPdu)
    assert event.pdu is not None and event.error.status == CommandStatus.ESME_RINVBNDSTS
    reply = decode(event.reply)
    assert isinstance(reply, SubmitSmResp)
    assert reply.command_status == CommandStatus.ESME_RINVBNDSTS and reply.sequence_number == 5


def test_receiver_may_not_submit() -> None:
    esme, smsc = pair(BindReceiver(system_id="r"))
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(destination_addr="1"))
    # and an SMSC refuses a submit on a receiver bind
    event = only(smsc.receive_data(encode(SubmitSm(sequence_number=9))))
    assert isinstance(event, BadPdu) and event.error.status == CommandStatus.ESME_RINVBNDSTS


def test_transmitter_gets_no_deliver_sm() -> None:
    esme, smsc = pair(BindTransmitter(system_id="t"))
    with pytest.raises(LocalProtocolError):
        smsc.send(DeliverSm())
    event = only(esme.receive_data(encode(DeliverSm(sequence_number=3))))
    assert isinstance(event, BadPdu)
    reply = decode(event.reply)
    assert isinstance(reply, DeliverSmResp)
    assert reply.command_status == CommandStatus.ESME_RINVBNDSTS


def test_response_less_request_refused_with_generic_nack() -> None:
    esme = Connection(Role.ESME)  # OPEN: alert_notification is not allowed
    event = only(esme.receive_data(encode(AlertNotification(sequence_number=4))))
    assert isinstance(event, BadPdu)
    reply = decode(event.reply)
    assert isinstance(reply, GenericNack) and reply.command_status == CommandStatus.ESME_RINVBNDSTS


def test_esme_may_not_send_submit_while_open() -> None:
    esme = Connection(Role.ESME)
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm())
    assert esme.next_sequence == 1  # nothing consumed


def test_unknown_command_id_gets_generic_nack_invcmdid() -> None:
    _esme, smsc = pair()
    frame = struct.pack(">IIII", 16, 0x00000099, 0, 1234)
    event = only(smsc.receive_data(frame))
    assert isinstance(event, BadPdu)
    nack = decode(event.reply)
    assert isinstance(nack, GenericNack)
    assert nack.command_status == CommandStatus.ESME_RINVCMDID and nack.sequence_number == 1234
    assert smsc.state is ConnectionState.BOUND_TRX  # the stream goes on


def test_truncated_body_gets_generic_nack_invcmdlen() -> None:
    _esme, smsc = pair()
    good = encode(SubmitSm(sequence_number=8, source_addr="123", destination_addr="456"))
    body = good[16:30]  # cut inside the body, header length adjusted to match
    frame = struct.pack(">IIII", 16 + len(body), CommandId.SUBMIT_SM, 0, 8) + body
    event = only(smsc.receive_data(frame))
    assert isinstance(event, BadPdu)
    nack = decode(event.reply)
    assert isinstance(nack, GenericNack)
    assert nack.command_status == CommandStatus.ESME_RINVCMDLEN and nack.sequence_number == 8
    # the next PDU is read normally
    ok = only(smsc.receive_data(encode(EnquireLink(sequence_number=9))))
    assert isinstance(ok, EnquireLink)


def test_bad_tlv_gets_the_command_response_with_status() -> None:
    _esme, smsc = pair()
    frame = encode(SubmitSm(sequence_number=11, destination_addr="1")) + b"\x02\x04\x00"
    frame = struct.pack(">I", len(frame)) + frame[4:]
    event = only(smsc.receive_data(frame))
    assert isinstance(event, BadPdu)
    reply = decode(event.reply)
    assert isinstance(reply, SubmitSmResp)
    assert reply.command_status == CommandStatus.ESME_RINVOPTPARSTREAM


def test_impossible_length_breaks_the_connection() -> None:
    _esme, smsc = pair()
    event = only(smsc.receive_data(struct.pack(">IIII", 5, CommandId.SUBMIT_SM, 0, 1)))
    assert isinstance(event, ConnectionBroken)
    assert decode(event.reply).command_status == CommandStatus.ESME_RINVCMDLEN
    assert smsc.state is ConnectionState.CLOSED
    assert smsc.receive_data(encode(EnquireLink(sequence_number=2))) == []
    with pytest.raises(LocalProtocolError):
        smsc.send(EnquireLink())


def test_oversized_pdu_breaks_the_connection() -> None:
    smsc = Connection(Role.SMSC, max_pdu=1024)
    event = only(smsc.receive_data(struct.pack(">IIII", 4096, CommandId.SUBMIT_SM, 0, 1)))
    assert isinstance(event, ConnectionBroken)


def test_frames_split_anywhere_are_reassembled() -> None:
    esme, smsc = pair()
    data = b"".join(
        esme.send(SubmitSm(source_addr="1", destination_addr=str(i), short_message=b"x" * i))
        for i in range(5)
    )
    events = []
    for i in range(len(data)):
        events += smsc.receive_data(data[i : i + 1])
    assert [e.destination_addr for e in events] == ["0", "1", "2", "3", "4"]  # type: ignore[union-attr]


def test_sequence_numbers_wrap_to_one() -> None:
    esme, smsc = pair(next_sequence=MAX_SEQUENCE - 1)
    seqs = []
    for _ in range(3):
        submit = SubmitSm(destination_addr="1")
        event = only(smsc.receive_data(esme.send(submit)))
        seqs.append(submit.sequence_number)
        resp = only(esme.receive_data(smsc.send(event.response(message_id="m"))))
        assert resp.sequence_number == submit.sequence_number
    # the bind took MAX_SEQUENCE - 1
    assert seqs == [MAX_SEQUENCE, 1, 2]
    assert esme.outstanding == 0


def test_wrap_skips_numbers_still_outstanding() -> None:
    esme, _ = pair(next_sequence=MAX_SEQUENCE)  # bind takes MAX_SEQUENCE, next is 1
    first = SubmitSm()
    esme.send(first)
    assert first.sequence_number == 1
    # force the counter around while 1 is still outstanding
    esme._next_seq = 1
    second = SubmitSm()
    esme.send(second)
    assert second.sequence_number == 2


def test_next_sequence_is_validated() -> None:
    with pytest.raises(ValueError):
        Connection(Role.ESME, next_sequence=0)
    with pytest.raises(ValueError):
        Connection(Role.ESME, next_sequence=MAX_SEQUENCE + 1)


def test_window_limits_outstanding_requests_but_not_keepalive() -> None:
    esme, _smsc = pair(window=2)
    first, second = SubmitSm(), SubmitSm()
    esme.send(first)
    esme.send(second)
    with pytest.raises(WindowFull):
        esme.send(SubmitSm())
    esme.send(EnquireLink())  # exempt: keepalive works with a full window
    assert esme.in_window == 2 and esme.outstanding == 3
    esme.receive_data(encode(SubmitSmResp(sequence_number=first.sequence_number)))
    assert esme.in_window == 1
    esme.send(SubmitSm())
    assert esme.forget(second.sequence_number)
    assert not esme.forget(second.sequence_number)
    assert esme.in_window == 1


def test_stray_response_is_passed_on_but_changes_nothing() -> None:
    esme, _ = pair()
    submit = SubmitSm()
    esme.send(submit)
    stray = only(esme.receive_data(encode(SubmitSmResp(sequence_number=999))))
    assert isinstance(stray, SubmitSmResp)
    assert esme.is_outstanding(submit.sequence_number)


def test_garbled_response_is_nacked_and_forgotten() -> None:
    esme, _ = pair()
    submit = SubmitSm()
    esme.send(submit)
    seq = submit.sequence_number
    body = b"no-terminator"
    frame = struct.pack(">IIII", 16 + len(body), CommandId.SUBMIT_SM_RESP, 0, seq) + body
    event = only(esme.receive_data(frame))
    assert isinstance(event, BadPdu)
    assert event.error.sequence_number == seq
    assert isinstance(decode(event.reply), GenericNack)
    assert not esme.is_outstanding(seq)


def test_unbind_started_by_esme() -> None:
    esme, smsc = pair()
    unbind = only(smsc.receive_data(esme.send(Unbind())))
    assert esme.state is smsc.state is ConnectionState.UNBINDING
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm())  # no new requests while unbinding
    only(esme.receive_data(smsc.send(unbind.response())))
    assert esme.state is smsc.state is ConnectionState.UNBOUND


def test_unbind_started_by_smsc_while_a_submit_is_answered() -> None:
    esme, smsc = pair()
    submit = only(smsc.receive_data(esme.send(SubmitSm(destination_addr="1"))))
    unbind = only(esme.receive_data(smsc.send(Unbind())))
    assert isinstance(unbind, Unbind)
    assert esme.state is ConnectionState.UNBINDING
    # the answer to a request already on the wire is still accepted
    resp = only(esme.receive_data(smsc.send(submit.response(message_id="x"))))
    assert isinstance(resp, SubmitSmResp)
    only(smsc.receive_data(esme.send(unbind.response())))
    assert esme.state is smsc.state is ConnectionState.UNBOUND


def test_enquire_link_allowed_while_open_and_bound() -> None:
    esme = Connection(Role.ESME)
    smsc = Connection(Role.SMSC)
    link = only(smsc.receive_data(esme.send(EnquireLink())))
    resp = only(esme.receive_data(smsc.send(link.response())))
    assert isinstance(resp, EnquireLinkResp)


def test_unbind_while_open_is_refused() -> None:
    smsc = Connection(Role.SMSC)
    event = only(smsc.receive_data(encode(Unbind(sequence_number=3))))
    assert isinstance(event, BadPdu)
    reply = decode(event.reply)
    assert isinstance(reply, UnbindResp) and reply.command_status == CommandStatus.ESME_RINVBNDSTS


def test_connection_lost_returns_outstanding() -> None:
    esme, _ = pair()
    a, b = SubmitSm(), QuerySm(message_id="1")
    esme.send(a)
    esme.send(b)
    assert sorted(esme.connection_lost()) == sorted([a.sequence_number, b.sequence_number])
    assert esme.state is ConnectionState.CLOSED and esme.outstanding == 0


def test_bind_response_for_an_old_bind_does_not_bind() -> None:
    esme = Connection(Role.ESME)
    data = esme.send(BindTransmitter())
    seq = decode(data).sequence_number
    esme.forget(seq)  # timed out
    esme.receive_data(encode(BindTransmitterResp(sequence_number=seq)))
    assert esme.state is ConnectionState.OPEN


def test_wire_trace_hook_sees_both_directions() -> None:
    seen: list[tuple[str, int]] = []
    esme = Connection(Role.ESME, on_frame=lambda d, f: seen.append((d, len(f))))
    smsc = Connection(Role.SMSC)
    bind = only(smsc.receive_data(esme.send(BindTransceiver(system_id="x"))))
    esme.receive_data(smsc.send(bind.response(system_id="y")))
    assert [d for d, _ in seen] == ["out", "in"]
