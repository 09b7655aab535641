"""The /v1 error envelope for every failure: auth, validation, unknown paths, bad JSON,
oversized bodies, wrong methods, DEVICE_NOT_LINKED."""

from __future__ import annotations

from otpkit import NUMBER, error_of, key, project, texts_to


async def test_auth_errors(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    for headers in ({}, key("nope"), key("smx_" + "0" * 12 + "_" + "a" * 43)):
        r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=headers)
        assert r.status_code == 401
        err = error_of(r)
        assert err["code"] == "UNAUTHORIZED" and err["origin"] == "auth"
    # A well-formed key with the right id but the wrong secret.
    _, k = await project(gw)
    forged = k[:-4] + ("AAAA" if not k.endswith("AAAA") else "BBBB")
    r = await gw.http.get("/v1/status", headers=key(forged))
    assert r.status_code == 401


async def test_envelope_for_unknown_paths_bad_json_and_big_bodies(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, channel=1)
    r = await gw.http.get("/v1/nope", headers=key(k))
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    r = await gw.http.post("/v1/messages/x/y", headers=key(k))
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    r = await gw.http.get("/v1/send-otp", headers=key(k))
    assert r.status_code == 405 and error_of(r)["code"] == "METHOD_NOT_ALLOWED"
    r = await gw.http.post("/v1/send-otp", content=b'{"to": ', headers=key(k))
    assert r.status_code == 400 and error_of(r)["code"] == "VALIDATION_ERROR"
    r = await gw.http.post("/v1/send-otp", content=b"", headers=key(k))
    assert r.status_code == 400 and error_of(r)["code"] == "VALIDATION_ERROR"
    big = b'{"to": "' + b"1" * (70 * 1024) + b'"}'
    r = await gw.http.post("/v1/send-otp", content=big, headers=key(k))
    assert r.status_code == 413 and error_of(r)["code"] == "PAYLOAD_TOO_LARGE"
    # The native face keeps its own shape next door.
    r = await gw.http.get("/api/v1/nope")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


async def test_validation_errors(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    _, k = await project(gw, channel=1)
    bad_otp = [
        {},
        {"to": 447700900123},
        {"to": "447700900123"},
        {"to": "+1"},
        {"to": "+99912345678"},
        {"to": NUMBER, "codeLength": 3},
        {"to": NUMBER, "codeLength": 11},
        {"to": NUMBER, "codeLength": "6"},
        {"to": NUMBER, "template": "no placeholder"},
        {"to": NUMBER, "template": "{{code}} {{other}}"},
        {"to": NUMBER, "extra": True},
    ]
    for body in bad_otp:
        r = await gw.http.post("/v1/send-otp", json=body, headers=key(k))
        assert r.status_code == 400, (body, r.text)
        err = error_of(r)
        assert err["code"] == "VALIDATION_ERROR" and err["origin"] == "request"
    for body in [{}, {"verificationId": "x"}, {"verificationId": "x", "otp": "12ab"}]:
        r = await gw.http.post("/v1/verify-otp", json=body, headers=key(k))
        assert r.status_code == 400, (body, r.text)
    for body in [
        {"to": NUMBER},
        {"to": NUMBER, "text": ""},
        {"to": "nope", "text": "hi"},
        {"to": NUMBER, "text": "hi", "sendAt": "tomorrow"},
        {"to": NUMBER, "text": "hi", "sendAt": "2030-01-01T00:00:00"},
        {"to": NUMBER, "text": "hi", "sendAt": "2999-01-01T00:00:00Z"},
        {"to": NUMBER, "text": "x" * 1601},
    ]:
        r = await gw.http.post("/v1/messages", json=body, headers=key(k))
        assert r.status_code == 400, (body, r.text)
        assert error_of(r)["code"] == "VALIDATION_ERROR"
    r = await gw.http.post("/v1/messages/bulk", json={"messages": []}, headers=key(k))
    assert r.status_code == 400
    too_many = {"messages": [{"to": NUMBER, "text": "hi"}] * 1001}
    r = await gw.http.post("/v1/messages/bulk", json=too_many, headers=key(k))
    assert r.status_code == 400 and "1000" in error_of(r)["message"]
    r = await gw.http.get("/v1/stats?days=0", headers=key(k))
    assert r.status_code == 400
    r = await gw.http.post(
        "/v1/send-otp", json={"to": NUMBER}, headers=key(k, **{"Idempotency-Key": "x" * 300})
    )
    assert r.status_code == 400


async def test_device_not_linked(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw)  # channel "device", and no device anywhere
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 409
    err = error_of(r)
    assert err["code"] == "DEVICE_NOT_LINKED" and err["origin"] == "device"
    for path, body in [
        ("/v1/messages", {"to": NUMBER, "text": "hi"}),
        ("/v1/messages/bulk", {"messages": [{"to": NUMBER, "text": "hi"}]}),
    ]:
        r = await gw.http.post(path, json=body, headers=key(k))
        assert r.status_code == 409 and error_of(r)["code"] == "DEVICE_NOT_LINKED"
    r = await gw.http.get("/v1/status", headers=key(k))
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["channel"] == "device" and data["ready"] is False
    assert data["device"]["linked"] is False
    assert [b["code"] for b in data["blockers"]] == ["DEVICE_NOT_LINKED"]
    assert texts_to(sim, NUMBER) == []
