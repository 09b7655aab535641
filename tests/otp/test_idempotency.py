"""Idempotency-Key on /v1 POSTs: replay with Idempotent-Replayed, 409 for another
body, concurrent duplicates wait for the first, failures are not kept, keys are per
project."""

from __future__ import annotations

import asyncio
import time

import msgspec
from otpkit import NUMBER, error_of, key, project

from smsgateway.core.idempotency import request_hash

TEST = {NUMBER: "2468"}


def _idem(k: str, idem: str) -> dict[str, str]:
    return key(k, **{"Idempotency-Key": idem})


async def test_replay_and_reuse(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_sends=2)
    body = {"to": NUMBER}
    first = await gw.http.post("/v1/send-otp", json=body, headers=_idem(k, "k-1"))
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    again = await gw.http.post("/v1/send-otp", json=body, headers=_idem(k, "k-1"))
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    r = await gw.http.post(
        "/v1/send-otp", json={"to": NUMBER, "codeLength": 8}, headers=_idem(k, "k-1")
    )
    assert r.status_code == 409 and error_of(r)["code"] == "IDEMPOTENCY_KEY_REUSED"
    # The replay sent (and counted) nothing: one real resend is still allowed.
    r = await gw.http.post("/v1/send-otp", json=body, headers=key(k))
    assert r.status_code == 200 and r.json()["data"]["resent"] is True
    r = await gw.http.post("/v1/send-otp", json=body, headers=key(k))
    assert r.status_code == 429
    # verify-otp too: a replayed wrong guess does not use another attempt.
    vid = first.json()["data"]["verificationId"]
    guess = {"verificationId": vid, "otp": "0000"}
    a = await gw.http.post("/v1/verify-otp", json=guess, headers=_idem(k, "v-1"))
    b = await gw.http.post("/v1/verify-otp", json=guess, headers=_idem(k, "v-1"))
    assert a.json()["data"]["attemptsLeft"] == 4
    assert b.json() == a.json() and b.headers["idempotent-replayed"] == "true"
    c = await gw.http.post("/v1/verify-otp", json=guess, headers=key(k))
    assert c.json()["data"]["attemptsLeft"] == 3


async def test_concurrent_duplicates_wait_for_the_first(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_sends=1)
    answers = await asyncio.gather(
        *(
            gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=_idem(k, "same"))
            for _ in range(10)
        )
    )
    assert [r.status_code for r in answers] == [200] * 10
    assert len({r.json()["data"]["verificationId"] for r in answers}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in answers]
    assert replayed.count("true") == 9 and replayed.count(None) == 1


async def test_failures_are_not_kept_and_keys_are_per_project(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, a = await project(gw, "A", test_numbers=TEST)
    _, b = await project(gw, "B", test_numbers=TEST)
    r = await gw.http.post("/v1/send-otp", json={"to": "bad"}, headers=_idem(a, "x"))
    assert r.status_code == 400
    # The key was released: another body under it is a fresh request, not a 409.
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=_idem(a, "x"))
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    # Project B's "x" is its own.
    rb = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=_idem(b, "x"))
    assert rb.status_code == 200 and "idempotent-replayed" not in rb.headers
    assert rb.json()["data"]["verificationId"] != r.json()["data"]["verificationId"]


async def test_a_key_held_by_another_node(otp_gateway) -> None:
    """Another node (here: the same store, written directly) holds the key: the
    duplicate polls the row and replays that node's answer once it is finished; a
    key left in progress by a node that died is taken over after the wait."""
    gw, _ = await otp_gateway(idempotency_wait_s=2.0)
    pid, k = await project(gw, test_numbers=TEST)
    store = gw.runtime.store
    assert store is not None
    body = b'{"to": "+447700900123"}'
    digest = request_hash(b"POST", b"/v1/send-otp", body)
    assert await store.idem_begin(f"v1:{pid}", "elsewhere", digest, 60_000) is None
    pending = asyncio.create_task(
        gw.http.post("/v1/send-otp", content=body, headers=_idem(k, "elsewhere"))
    )
    await asyncio.sleep(0.2)
    assert not pending.done()
    first = msgspec.json.encode({"success": True, "data": {"from": "the other node"}})
    await store.idem_finish(f"v1:{pid}", "elsewhere", msgspec.msgpack.encode([200, first]))
    r = await pending
    assert r.status_code == 200 and r.headers["idempotent-replayed"] == "true"
    assert r.json()["data"] == {"from": "the other node"}
    # Abandoned: in progress since long before the wait; this request takes it over.
    old = int(time.time() * 1000) - 60_000
    await store.idem_begin(f"v1:{pid}", "dead", digest, 600_000, at=old)
    r = await gw.http.post("/v1/send-otp", content=body, headers=_idem(k, "dead"))
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert r.json()["data"]["verificationId"]
    # Still in progress and recent after the wait: 409 IDEMPOTENCY_IN_PROGRESS.
    await store.idem_begin(f"v1:{pid}", "busy", digest, 600_000)
    r = await gw.http.post("/v1/send-otp", content=body, headers=_idem(k, "busy"))
    assert r.status_code == 409 and error_of(r)["code"] == "IDEMPOTENCY_IN_PROGRESS"
