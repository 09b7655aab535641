"""The whole OTP flow through a project whose channel is an SMPP link to the
simulator: the code is read from the SMS the simulator received and verified."""

from __future__ import annotations

from otpkit import NUMBER, OTHER, code_in, error_of, key, project, texts_to

from gwkit import eventually, link_to, make_settings


async def test_send_and_verify_through_smpp(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, "Acme", channel=1, code_length=7)
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "pending" and data["channel"] == "smpp"
    [text] = await eventually(lambda: texts_to(sim, NUMBER))
    assert "Acme" in text and "10 minutes" in text
    code = code_in(text)
    assert len(code) == 7
    vid = data["verificationId"]
    wrong = "0000000" if code != "0000000" else "1111111"
    r = await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": wrong}, headers=key(k)
    )
    assert r.json()["data"] == {"verified": False, "status": "pending", "attemptsLeft": 4}
    r = await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": code}, headers=key(k)
    )
    assert r.json()["data"] == {"verified": True, "status": "verified", "attemptsLeft": 3}
    r = await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": code}, headers=key(k)
    )
    assert error_of(r)["code"] == "OTP_ALREADY_VERIFIED"
    r = await gw.http.get("/v1/stats", headers=key(k))
    totals = r.json()["data"]["totals"]["otp"]
    assert totals == {"sent": 1, "verified": 1, "failed": 0, "expired": 0}


async def test_resend_sends_the_same_code(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, channel=1, max_sends=2, template="Code: {{code}}")
    first = await gw.http.post("/v1/send-otp", json={"to": OTHER}, headers=key(k))
    again = await gw.http.post("/v1/send-otp", json={"to": OTHER}, headers=key(k))
    assert again.json()["data"]["verificationId"] == first.json()["data"]["verificationId"]
    texts = await eventually(lambda: len(texts_to(sim, OTHER)) == 2 and texts_to(sim, OTHER))
    assert texts[0] == texts[1] and texts[0].startswith("Code: ")
    r = await gw.http.post("/v1/send-otp", json={"to": OTHER}, headers=key(k))
    assert r.status_code == 429 and error_of(r)["code"] == "RATE_LIMITED"
    # A per-request template and code length apply to a new verification.
    r = await gw.http.post(
        "/v1/send-otp",
        json={"to": NUMBER, "template": "{{project}}: {{code}}", "codeLength": 4},
        headers=key(k),
    )
    assert r.status_code == 200
    [text] = await eventually(lambda: texts_to(sim, NUMBER))
    assert text.startswith("Acme: ") and len(code_in(text)) == 4


async def test_replayed_send_otp_sends_nothing(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, channel=1)
    headers = key(k, **{"Idempotency-Key": "once"})
    a = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=headers)
    b = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=headers)
    assert b.headers["idempotent-replayed"] == "true" and b.json() == a.json()
    await eventually(lambda: texts_to(sim, NUMBER))
    # One more plain send proves the pipeline is flowing; still one SMS per real send.
    c = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert c.json()["data"]["resent"] is True
    await eventually(lambda: len(texts_to(sim, NUMBER)) == 2)
    assert len(texts_to(sim, NUMBER)) == 2


async def test_status_of_an_smpp_project(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, channel=1)
    data = (await gw.http.get("/v1/status", headers=key(k))).json()["data"]
    assert data["channel"] == "smpp" and data["ready"] is True
    assert data["link"] == {"id": 1, "name": "link-1", "status": "BOUND"}
    assert data["blockers"] == [] and data["device"] is None


async def test_verification_survives_a_restart(tmp_path, make_sim, make_gateway) -> None:
    """Stored, not held in memory: after a restart the resend carries the same code
    (derived again under the master key) and the code verifies."""
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    gw = await make_gateway(settings)
    await gw.bound()
    _, k = await project(gw, channel=1)
    vid = (await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))).json()["data"][
        "verificationId"
    ]
    [first] = await eventually(lambda: texts_to(sim, NUMBER))
    await gw.stop()
    gw = await make_gateway(settings)
    await gw.bound()
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.json()["data"]["verificationId"] == vid and r.json()["data"]["resent"] is True
    texts = await eventually(lambda: len(texts_to(sim, NUMBER)) == 2 and texts_to(sim, NUMBER))
    assert code_in(texts[1]) == code_in(first)
    r = await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": code_in(first)}, headers=key(k)
    )
    assert r.json()["data"]["verified"] is True
