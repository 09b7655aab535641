"""verify-otp rules, over test numbers (fixed codes, nothing sent): attempts count
down to OTP_MAX_ATTEMPTS, expiry, already verified, not found, concurrent attempts
never exceed the limit, and one project never reaches another's verifications."""

from __future__ import annotations

import asyncio

from otpkit import NUMBER, OTHER, error_of, key, project, texts_to

from gwkit import admin

TEST = {NUMBER: "2468", OTHER: "13579"}


async def _send(gw, k: str, to: str = NUMBER) -> dict:
    r = await gw.http.post("/v1/send-otp", json={"to": to}, headers=key(k))
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _verify(gw, k: str, vid: str, otp: str):
    return await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": otp}, headers=key(k)
    )


async def test_test_number_is_never_sent_and_verifies(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST)  # channel "device", no device linked
    data = await _send(gw, k)
    assert data["status"] == "pending" and data["channel"] == "test"
    assert data["expiresAt"].endswith("Z")
    r = await _verify(gw, k, data["verificationId"], "2468")
    assert r.status_code == 200
    assert r.json() == {
        "success": True,
        "data": {"verified": True, "status": "verified", "attemptsLeft": 4},
    }
    # A five-digit test code works too, and the other number is still unaffected.
    other = await _send(gw, k, OTHER)
    assert (await _verify(gw, k, other["verificationId"], "13579")).json()["data"]["verified"]
    assert texts_to(sim, NUMBER) == [] and texts_to(sim, OTHER) == []


async def test_wrong_codes_count_down_to_max_attempts(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_checks=3)
    vid = (await _send(gw, k))["verificationId"]
    seen = []
    for _ in range(3):
        r = await _verify(gw, k, vid, "0000")
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        assert d["verified"] is False
        seen.append((d["attemptsLeft"], d["status"]))
    assert seen == [(2, "pending"), (1, "pending"), (0, "failed")]
    # Closed for good: even the right code is refused now.
    r = await _verify(gw, k, vid, "2468")
    assert r.status_code == 403
    assert error_of(r)["code"] == "OTP_MAX_ATTEMPTS"
    # A new send opens a new verification (the dead one is not pending any more).
    fresh = await _send(gw, k)
    assert fresh["verificationId"] != vid and fresh["resent"] is False
    assert (await _verify(gw, k, fresh["verificationId"], "2468")).json()["data"]["verified"]


async def test_expiry_and_already_verified(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    pid, k = await project(gw, test_numbers=TEST, ttl_s=1)
    vid = (await _send(gw, k))["verificationId"]
    await asyncio.sleep(1.2)
    r = await _verify(gw, k, vid, "2468")
    assert r.status_code == 410 and error_of(r)["code"] == "OTP_EXPIRED"
    r = await _verify(gw, k, vid, "2468")
    assert r.status_code == 410 and error_of(r)["code"] == "OTP_EXPIRED"
    # After expiry a send starts over.
    assert (await _send(gw, k))["verificationId"] != vid
    r = await gw.http.patch(f"/api/v1/admin/projects/{pid}", json={"ttl_s": 600}, headers=admin())
    assert r.status_code == 200
    vid2 = (await _send(gw, k, OTHER))["verificationId"]
    assert (await _verify(gw, k, vid2, "13579")).json()["data"]["verified"] is True
    r = await _verify(gw, k, vid2, "13579")
    assert r.status_code == 409 and error_of(r)["code"] == "OTP_ALREADY_VERIFIED"
    r = await _verify(gw, k, vid2, "0000")
    assert r.status_code == 409 and error_of(r)["code"] == "OTP_ALREADY_VERIFIED"


async def test_not_found_and_projects_isolated(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, a = await project(gw, "A", test_numbers=TEST)
    _, b = await project(gw, "B", test_numbers=TEST)
    vid = (await _send(gw, a))["verificationId"]
    r = await _verify(gw, a, "0190b5c4-0000-7000-8000-000000000000", "2468")
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    # B sees nothing of A's verification, and its tries do not use A's attempts.
    for _ in range(6):
        r = await _verify(gw, b, vid, "2468")
        assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    r = await _verify(gw, a, vid, "2468")
    assert r.json()["data"] == {"verified": True, "status": "verified", "attemptsLeft": 4}
    # The same number in B is B's own verification.
    vb = (await _send(gw, b))["verificationId"]
    assert vb != vid


async def test_concurrent_attempts_never_exceed_max_checks(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_checks=5)
    vid = (await _send(gw, k))["verificationId"]
    answers = await asyncio.gather(*(_verify(gw, k, vid, "1111") for _ in range(25)))
    counted = [r.json()["data"]["attemptsLeft"] for r in answers if r.status_code == 200]
    refused = [error_of(r)["code"] for r in answers if r.status_code != 200]
    assert sorted(counted) == [0, 1, 2, 3, 4]
    assert refused == ["OTP_MAX_ATTEMPTS"] * 20


async def test_resend_keeps_verification_and_counts_toward_max_sends(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_sends=3)
    first = await _send(gw, k)
    assert first["resent"] is False
    for _ in range(2):
        again = await _send(gw, k)
        assert again["verificationId"] == first["verificationId"]
        assert again["expiresAt"] == first["expiresAt"] and again["resent"] is True
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 429
    assert error_of(r)["code"] == "RATE_LIMITED"
    assert int(r.headers["retry-after"]) >= 1
    # The verification itself is still good.
    r = await _verify(gw, k, first["verificationId"], "2468")
    assert r.json()["data"]["verified"] is True


async def test_concurrent_sends_open_one_verification(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, test_numbers=TEST, max_sends=4)
    answers = await asyncio.gather(
        *(gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k)) for _ in range(6))
    )
    ok = [r.json()["data"] for r in answers if r.status_code == 200]
    assert len(ok) == 4 and len({d["verificationId"] for d in ok}) == 1
    assert sorted(d["resent"] for d in ok) == [False, True, True, True]
    assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 2
