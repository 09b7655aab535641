"""Priority lists over real sockets: two SMSC simulators behind links 1 and 2, tried
in order, moving on when the first refuses, is down or disabled, or does not answer
in time; every try is an attempts row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gwkit import Gateway, dead_link, eventually, link_to, make_settings
from smsgateway.core.channels.priority import PriorityList
from smsgateway.core.messages import MessageService, SendResult
from smsgateway.settings import LinkSettings, PoolSettings, Settings, SettingsError
from smsgateway.settings_channels import SMS_API_ID, ListSettings, SmsApiSettings
from smsgateway.smscsim.simulator import SmscSimulator

SimFactory = Callable[..., Awaitable[SmscSimulator]]
GatewayFactory = Callable[[Settings], Awaitable[Gateway]]

DEST = "+447700900123"
LIST_ID = 200


def with_lists(
    tmp_path: Path,
    links: list[LinkSettings],
    *,
    gateways: list[int] | None = None,
    members: list[int] | None = None,
    timeout_s: float = 1.0,
    pools: list[PoolSettings] | None = None,
    **kw: Any,
) -> Settings:
    settings = make_settings(tmp_path, links, pools, **kw)
    ids = [link.id for link in links]
    settings.smpp.lists = [
        ListSettings(id=LIST_ID, name="main", members=members or ids, attempt_timeout_s=timeout_s)
    ]
    settings.sms_api = SmsApiSettings(gateways=gateways or ids, attempt_timeout_s=timeout_s)
    settings.validate()
    return settings


def service(gw: Gateway) -> MessageService:
    assert gw.runtime.messages is not None
    return gw.runtime.messages


async def ready(gw: Gateway) -> None:
    """The lists start trying members once those bound (or their timeout passed)."""
    router = gw.runtime.router
    assert router is not None
    lists: list[PriorityList] = [*router.lists.values()]
    if router.sms_api is not None:
        lists.append(router.sms_api)
    await eventually(lambda: all(lst.ready for lst in lists))


async def send(gw: Gateway, channel_id: int = SMS_API_ID, **kw: Any) -> SendResult:
    args: dict[str, Any] = dict(
        owner="oauth:c1",
        channel_id=channel_id,
        source="Shop",
        destination=DEST,
        text="code 1234",
        wait="accepted",
    )
    args.update(kw)
    return await service(gw).send(**args)


async def tries(gw: Gateway, message_id: str) -> list[tuple[int, str, str, str | None]]:
    return [
        (a.channel_id, a.channel_kind, a.outcome, a.error)
        for a in await service(gw).attempts(message_id)
    ]


@pytest.fixture
async def two_sims(make_sim: SimFactory) -> tuple[SmscSimulator, SmscSimulator]:
    return await make_sim(), await make_sim()


async def test_refusal_moves_to_the_next_gateway(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    a.configure(fail_rate=1.0)
    gw = await make_gateway(with_lists(tmp_path, [link_to(a, 1), link_to(b, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    result = await send(gw)
    assert result.success and result.status == "submitted", result
    assert [m["status"] for m in a.recent_messages()] == ["ESME_RSUBMITFAIL"]
    assert [m["status"] for m in b.recent_messages()] == ["OK"]
    assert result.sms_ids == [b.recent_messages()[0]["message_id"]]
    assert await tries(gw, result.message_id) == [
        (1, "link", "refused", "ESME_RSUBMITFAIL"),
        (2, "link", "accepted", None),
    ]
    row = await service(gw).get_owned("oauth:c1", result.message_id)
    assert row is not None and row.message.link_id == 2 and row.parts[0].link_id == 2
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_channel_attempts_total{channel="1",outcome="refused"} 1.0' in metrics
    assert 'smsgateway_channel_attempts_total{channel="2",outcome="accepted"} 1.0' in metrics


async def test_a_member_that_is_down_is_skipped(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    _, b = two_sims
    gw = await make_gateway(with_lists(tmp_path, [dead_link(1), link_to(b, 2)]))
    await gw.bound(2)
    await ready(gw)
    result = await send(gw)
    assert result.success and result.status == "submitted"
    attempts = await tries(gw, result.message_id)
    assert [(cid, outcome) for cid, _, outcome, _ in attempts] == [(1, "down"), (2, "accepted")]
    assert attempts[0][3] is not None and "link-1" in attempts[0][3]
    assert len(b.recent_messages()) == 1


async def test_a_disabled_member_is_skipped(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    gw = await make_gateway(with_lists(tmp_path, [link_to(a, 1), link_to(b, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    await gw.ops.links.toggle(1, False, "maintenance", "test")
    result = await send(gw, channel_id=LIST_ID)  # a named list, as a native target
    assert result.success
    attempts = await tries(gw, result.message_id)
    assert [(cid, outcome) for cid, _, outcome, _ in attempts] == [(1, "down"), (2, "accepted")]
    assert "disabled" in (attempts[0][3] or "")
    assert a.recent_messages() == [] and len(b.recent_messages()) == 1


async def test_no_answer_in_time_moves_on(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    # Link 1's own response timeout is far off: the list's member timeout decides.
    settings = with_lists(
        tmp_path, [link_to(a, 1, response_timeout=30.0), link_to(b, 2)], timeout_s=0.5
    )
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    a.configure(resp_delay_ms=1_500)  # takes the submit and answers late
    result = await send(gw)
    assert result.success and result.status == "submitted"
    assert len(a.recent_messages()) == 1 and len(b.recent_messages()) == 1
    attempts = await tries(gw, result.message_id)
    assert [(cid, outcome) for cid, _, outcome, _ in attempts] == [
        (1, "timeout"),
        (2, "accepted"),
    ]
    assert "did not answer" in (attempts[0][3] or "")

    # Link 1's answer comes after the list moved on: counted as a possible duplicate,
    # and the message stays with link 2's id.
    async def late_counted() -> bool:
        text = (await gw.http.get("/metrics")).text
        return 'smsgateway_parts_resent_total{reason="failover"} 1.0' in text

    await eventually(late_counted)
    row = await service(gw).get_owned("oauth:c1", result.message_id)
    assert row is not None and row.parts[0].link_id == 2
    assert row.parts[0].smsc_id == b.recent_messages()[0]["message_id"]
    assert len(await tries(gw, result.message_id)) == 2


async def test_every_member_refusing_rejects_with_every_attempt(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    a.configure(fail_rate=1.0)
    b.configure(fail_rate=1.0, fail_status=0x0B)  # ESME_RINVDSTADR
    gw = await make_gateway(with_lists(tmp_path, [link_to(a, 1), link_to(b, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    result = await send(gw)
    assert not result.success and result.status == "rejected"
    attempts = await tries(gw, result.message_id)
    assert [(cid, outcome) for cid, _, outcome, _ in attempts] == [(1, "refused"), (2, "refused")]
    assert result.error == attempts[-1][3] and result.error
    row = await service(gw).get_owned("oauth:c1", result.message_id)
    assert row is not None and row.message.status == "rejected"
    assert row.message.error == result.error


async def test_native_send_to_a_list_id_fails_over(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    a.configure(fail_rate=1.0)
    gw = await make_gateway(with_lists(tmp_path, [link_to(a, 1), link_to(b, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    headers = await gw.user("native@example.com")
    r = await gw.send(headers, esme=LIST_ID)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] and body["status"] == "submitted" and body["esme"] == LIST_ID
    assert len(b.recent_messages()) == 1
    check = await gw.http.post("/api/v1/sms/check-esme", json={"esme": LIST_ID}, headers=headers)
    assert check.status_code == 200 and check.json()["persist"] is True


async def test_failover_recuts_a_long_message_for_the_next_link(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    a.configure(fail_rate=1.0)
    links = [link_to(a, 1, split_method="udh8"), link_to(b, 2, split_method="sar")]
    gw = await make_gateway(with_lists(tmp_path, links))
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    text = "".join(f"word{i} " for i in range(40))  # 240 GSM characters: two parts
    result = await send(gw, text=text)
    assert result.success and len(result.sms_ids) == 2
    got_a, got_b = a.recent_messages(), b.recent_messages()
    assert len(got_a) == 2 and all(m["esm_class"] & 0x40 for m in got_a)  # UDH on link 1
    assert len(got_b) == 2 and not any(m["esm_class"] & 0x40 for m in got_b)  # SAR on 2
    assert all("sar_msg_ref_num" in m["tlvs"] for m in got_b), got_b
    row = await service(gw).get_owned("oauth:c1", result.message_id)
    assert row is not None
    assert [(p.seq, p.esm_class, p.tlvs is not None, p.link_id) for p in row.parts] == [
        (1, 0, True, 2),
        (2, 0, True, 2),
    ]
    assert row.message.parts_total == 2 and row.message.status == "submitted"


async def test_a_pool_member_and_a_nested_list(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b, c = await make_sim(fail_rate=1.0), await make_sim(fail_rate=1.0), await make_sim()
    links = [link_to(a, 1), link_to(b, 2), link_to(c, 3)]
    settings = make_settings(tmp_path, links, [PoolSettings(id=10, links=[1])])
    settings.smpp.lists = [
        ListSettings(id=200, members=[10, 2], attempt_timeout_s=1.0),
        ListSettings(id=300, members=[200, 3], attempt_timeout_s=1.0),
    ]
    settings.validate()
    gw = await make_gateway(settings)
    for link_id in (1, 2, 3):
        await gw.bound(link_id)
    await ready(gw)
    result = await send(gw, channel_id=300)
    assert result.success, result
    assert await tries(gw, result.message_id) == [
        (1, "link", "refused", "ESME_RSUBMITFAIL"),
        (2, "link", "refused", "ESME_RSUBMITFAIL"),
        (3, "link", "accepted", None),
    ]
    assert len(c.recent_messages()) == 1


async def test_a_list_send_waiting_at_a_restart_goes_out_after_it(
    two_sims: tuple[SmscSimulator, SmscSimulator], make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    a, b = two_sims
    a.configure(fail_rate=1.0)
    settings = with_lists(tmp_path, [link_to(a, 1), link_to(b, 2)])
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    at = int(time.time() * 1000) + 1500
    result = await send(gw, wait="stored", not_before_ms=at)
    await gw.stop()
    gw2 = await make_gateway(settings)

    async def sent() -> bool:
        row = await service(gw2).get_owned("oauth:c1", result.message_id)
        return row is not None and row.message.status in ("submitted", "delivered")

    await eventually(sent)
    assert len(b.recent_messages()) == 1
    assert [o for _, _, o, _ in await tries(gw2, result.message_id)] == ["refused", "accepted"]


@pytest.mark.parametrize(
    ("lists", "gateways", "message"),
    [
        ([ListSettings(id=1, members=[1])], [], "used by another"),
        ([ListSettings(id=200, members=[9])], [], "unknown members"),
        ([ListSettings(id=200, members=[])], [], "at least one member"),
        (
            [ListSettings(id=200, members=[201]), ListSettings(id=201, members=[1, 200])],
            [],
            "contains itself",
        ),
        ([ListSettings(id=200, members=[200])], [], "contains itself"),
        ([], [1, 7], "sms_api.gateways"),
        ([ListSettings(id=200, members=[1], attempt_timeout_s=0)], [], "attempt_timeout_s"),
    ],
)
def test_list_settings_are_checked_at_start(
    tmp_path: Path, lists: list[ListSettings], gateways: list[int], message: str
) -> None:
    settings = make_settings(tmp_path, [dead_link(1)])
    settings.smpp.lists = lists
    settings.sms_api = SmsApiSettings(gateways=gateways)
    with pytest.raises(SettingsError, match=message):
        settings.validate()


async def test_long_message_rest_stays_on_its_list_member_across_a_restart(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """Link 1's SMSC takes part 1 of a three-part message, then drops the connection
    (window 1 sends the parts in order) and refuses binds. The list does not move a
    started message on, also past its timeout; after a restart the rest goes to link 1
    again although link 2 is bound first."""
    first = await make_sim(drop_after=2)
    other = await make_sim()
    settings = with_lists(tmp_path, [link_to(first, 1, window=1), link_to(other, 2)])
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    await ready(gw)
    first.configure(refuse_binds=True)
    text = "".join(f"part{i:03d} " for i in range(50))  # 450 GSM characters: three parts
    result = await send(gw, text=text, wait="stored")
    await eventually(lambda: first.dropped >= 1)
    await asyncio.sleep(1.5)  # past the list's 1 s member timeout
    assert other.recent_messages() == []
    await gw.stop()
    assert [m["status"] for m in first.recent_messages()] == ["OK", "DROPPED"]

    first.configure(drop_after=0)
    gw2 = await make_gateway(settings)
    await gw2.bound(2)
    await asyncio.sleep(0.3)  # the other member is bound and idle...
    first.configure(refuse_binds=False)  # ...before the first one binds

    async def sent() -> bool:
        row = await service(gw2).get_owned("oauth:c1", result.message_id)
        return row is not None and row.message.status in ("submitted", "delivered")

    await eventually(sent)
    assert [m["status"] for m in first.recent_messages()] == ["OK", "DROPPED", "OK", "OK"]
    assert other.recent_messages() == []
    assert [(cid, o) for cid, _, o, _ in await tries(gw2, result.message_id)] == [(1, "accepted")]


def test_lists_and_sms_api_read_from_toml(tmp_path: Path) -> None:
    from smsgateway.settings import load_settings

    path = tmp_path / "gw.toml"
    path.write_text(
        """
[[smpp.links]]
id = 1
[[smpp.links]]
id = 2
[[smpp.pools]]
id = 100
links = [2]
[[smpp.lists]]
id = 200
name = "failover"
members = [1, 100]
attempt_timeout_s = 2.5
[sms_api]
gateways = [200, 2]
attempt_timeout_s = 4.0
""",
        encoding="utf-8",
    )
    settings = load_settings(path, env={})
    assert settings.smpp.lists == [
        ListSettings(id=200, name="failover", members=[1, 100], attempt_timeout_s=2.5)
    ]
    assert settings.sms_api == SmsApiSettings(gateways=[200, 2], attempt_timeout_s=4.0)
    path.write_text(path.read_text() + "\n[[smpp.lists]]\nid = 100\nmembers = [1]\n")
    with pytest.raises(SettingsError, match="used by another"):
        load_settings(path, env={})
