"""Idempotency-Key on /v1 POSTs: replay with Idempotent-Replayed, 409 for another
body, concurrent duplicates wait for the first, failures are not kept, keys are per
project."""

from __future__ import annotations

import asyncio

from otpkit import NUMBER, error_of, key, project

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
