"""/openapi.json lists the mounted /v1 face: its paths, bodies, API-key security and
error envelope, and a real /v1 error matches the documented envelope."""

from __future__ import annotations

from otpkit import NUMBER, error_of


async def test_openapi_lists_v1(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    doc = (await gw.http.get("/openapi.json")).json()
    paths = doc["paths"]
    for path, method in (
        ("/v1/send-otp", "post"),
        ("/v1/verify-otp", "post"),
        ("/v1/messages", "post"),
        ("/v1/messages/bulk", "post"),
        ("/v1/messages/{message_id}", "get"),
        ("/v1/status", "get"),
        ("/v1/stats", "get"),
    ):
        op = paths[path][method]
        assert op["security"] == [{"projectKey": []}], path
        assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/V1Error"
        }, path
        if method == "post":
            assert "requestBody" in op and "413" in op["responses"], path
    assert doc["components"]["securitySchemes"]["projectKey"]["name"] == "X-SMX-API-Key"
    schemas = doc["components"]["schemas"]
    send = paths["/v1/send-otp"]["post"]["requestBody"]["content"]["application/json"]
    assert send["schema"] == {"$ref": "#/components/schemas/SendOtpBody"}
    assert set(schemas["SendOtpBody"]["properties"]) == {"to", "template", "codeLength"}
    assert set(schemas["VerifyOtpBody"]["properties"]) == {"verificationId", "otp"}
    detail = schemas["V1ErrorDetail"]["properties"]
    # The documented envelope is what /v1 actually answers.
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER})
    assert r.status_code == 401
    assert set(error_of(r)) == set(detail)
    assert set(r.json()) == set(schemas["V1Error"]["properties"])
