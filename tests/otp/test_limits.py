"""Per-project request limit: 429 RATE_LIMITED with Retry-After, one project's
flood does not limit another."""

from __future__ import annotations

from otpkit import error_of, key, project


async def test_project_rate_limit(otp_gateway) -> None:
    gw, _ = await otp_gateway(project_rps=0.01, project_burst=3)
    _, a = await project(gw, "A", channel=1)
    _, b = await project(gw, "B", channel=1)
    codes = [(await gw.http.get("/v1/status", headers=key(a))).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await gw.http.get("/v1/status", headers=key(a))
    err = error_of(r)
    assert err["code"] == "RATE_LIMITED" and err["origin"] == "rate_limit"
    assert int(r.headers["retry-after"]) >= 1
    assert (await gw.http.get("/v1/status", headers=key(b))).status_code == 200
