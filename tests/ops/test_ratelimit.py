"""Rate limits, exceeded on purpose: the global L1 bucket before routing, the per-app
L2 bucket on /api/v1/sms/* after the JWT check, and failed-login limits per email and
per client address."""

from __future__ import annotations

from pathlib import Path

import pytest

from gwkit import PASSWORD, admin, dead_link, make_settings
from smsgateway.core.errors import InvalidCredentials
from smsgateway.core.ratelimit import (
    QUOTA_SCOPE_KEY,
    AppLimiter,
    LoginGuard,
    RateLimitExceeded,
    TokenBucket,
    TooManyLogins,
    _KeyedBuckets,
)
from smsgateway.settings_ops import AppRateLimit, RateLimitSettings

LIMITED = {"error": "rate limit exceeded"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_arithmetic() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token back after 1/rate s
    assert bucket.take(0.5) == 0.0
    headers = bucket.headers(0.5, 0.25)
    assert headers == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",
        "Retry-After": "1",
    }
    assert bucket.take(100.0) == 0.0 and bucket.tokens == 2.0  # refill caps at burst


def test_app_limiter_per_app_and_overrides() -> None:
    clock = Clock()
    settings = RateLimitSettings(
        app_rps=1, app_burst=2, apps={7: AppRateLimit(rps=0), 8: AppRateLimit(rps=10, burst=5)}
    )
    limiter = AppLimiter(settings, clock=clock)
    scope: dict[str, object] = {}
    limiter.check(1, scope)
    limiter.check(1, scope)
    with pytest.raises(RateLimitExceeded):
        limiter.check(1, scope)
    assert scope[QUOTA_SCOPE_KEY] == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",
        "Retry-After": "1",
    }
    limiter.check(2, {})  # another app has its own bucket
    for _ in range(50):
        limiter.check(7, {})  # 0: this app is not limited
    for _ in range(5):
        limiter.check(8, {})
    with pytest.raises(RateLimitExceeded):
        limiter.check(8, {})
    clock.now += 1.0
    limiter.check(1, {})
    assert limiter.refused == 2


def test_login_guard_counts_failures_only() -> None:
    clock = Clock()
    guard = LoginGuard(per_minute=6, burst=2, clock=clock)

    def fail(email: str, address: str) -> None:
        with pytest.raises(InvalidCredentials), guard.attempt(email, address):
            raise InvalidCredentials()

    for _ in range(5):
        with guard.attempt("a@example.com", "10.0.0.1"):
            pass  # successes never use up the allowance
    fail("a@example.com", "10.0.0.1")
    fail("a@example.com", "10.0.0.2")
    # The email is out of attempts, from any address, even with the right password.
    with pytest.raises(TooManyLogins), guard.attempt("A@Example.com", "10.0.0.3"):
        pass
    # The first address has one failure left; another email from it may try once more.
    fail("b@example.com", "10.0.0.1")
    scope: dict[str, object] = {}
    with pytest.raises(TooManyLogins), guard.attempt("c@example.com", "10.0.0.1", scope):
        pass
    assert scope[QUOTA_SCOPE_KEY] == {"Retry-After": "10"}
    clock.now += 10.0  # 6 per minute: one attempt back every 10 s
    with guard.attempt("c@example.com", "10.0.0.1"):
        pass


def test_keyed_buckets_stay_bounded() -> None:
    buckets = _KeyedBuckets(rate=1.0, burst=5, max_keys=100)
    for i in range(1000):
        buckets.get(f"k{i}", 0.0).take(0.0)
    assert len(buckets) <= 100


async def test_global_limit_over_http(tmp_path: Path, make_gateway) -> None:
    settings = make_settings(
        tmp_path, [], ratelimit=RateLimitSettings(global_rps=0.5, global_burst=3)
    )
    gw = await make_gateway(settings)
    for _ in range(3):
        r = await gw.http.get("/api/v1/nowhere")
        assert r.status_code == 404  # counted before routing, even where nothing is
    r = await gw.http.get("/dashboard/stats")
    assert (r.status_code, r.json()) == (429, LIMITED)
    assert r.headers["Retry-After"] == "2"
    assert r.headers["X-RateLimit-Limit"] == "0.5"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset"]) >= 2
    r = await gw.http.post("/api/v1/auth/login", json={})
    assert r.status_code == 429
    # Probes are exempt, so a flood does not get a healthy node restarted.
    assert (await gw.http.get("/healthy")).status_code == 200
    assert (await gw.http.get("/metrics")).status_code == 200
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_ratelimit_refused_total{level="global"} 2.0' in metrics


async def test_app_limit_over_http(tmp_path: Path, make_gateway) -> None:
    settings = make_settings(
        tmp_path,
        [dead_link(1)],
        ratelimit=RateLimitSettings(app_rps=0.2, app_burst=2, apps={3: AppRateLimit(rps=0)}),
    )
    gw = await make_gateway(settings)
    a = await gw.user("a@example.com")  # app 1
    b = await gw.user("b@example.com")  # app 2
    c = await gw.user("c@example.com")  # app 3: no limit
    check = "/api/v1/sms/check-esme"
    r = await gw.http.post(check, json={"esme": 1}, headers=a)
    assert r.status_code == 200
    assert (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]) == ("0.2", "1")
    r = await gw.http.post("/api/v1/sms/info", json={"esme": 1, "message_id": "m"}, headers=a)
    assert r.status_code == 404 and r.headers["X-RateLimit-Remaining"] == "0"
    r = await gw.send(a)
    assert (r.status_code, r.json()) == (429, LIMITED)
    assert r.headers["Retry-After"] == "5" and r.headers["X-RateLimit-Remaining"] == "0"
    # The JWT check comes first: a bad token is a 401, not a 429.
    bad = {**a, "Authorization": "Bearer nope"}
    r = await gw.http.post(check, json={"esme": 1}, headers=bad)
    assert r.status_code == 401
    # Other apps have their own buckets; app 3's override turns the limit off.
    assert (await gw.http.post(check, json={"esme": 1}, headers=b)).status_code == 200
    for _ in range(5):
        r = await gw.http.post(check, json={"esme": 1}, headers=c)
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    # Only /api/v1/sms/* is limited per app.
    assert (await gw.http.get("/api/v1/dashboard/metrics", headers=a)).status_code == 200


async def test_login_limit_over_http(tmp_path: Path, make_gateway) -> None:
    settings = make_settings(
        tmp_path,
        [],
        ratelimit=RateLimitSettings(login_per_minute=1, login_burst=3),
        trusted_proxies=["127.0.0.1/32"],
    )
    gw = await make_gateway(settings)
    reg = await gw.register("victim@example.com")
    login = "/api/v1/user/login"

    def attempt(email: str, password: str, address: str) -> dict[str, object]:
        return {
            "json": {"email": email, "password": password, "app_id": reg["app_id"]},
            "headers": {"X-Forwarded-For": address},
        }

    # Successful logins do not count.
    for _ in range(5):
        r = await gw.http.post(login, **attempt("victim@example.com", PASSWORD, "10.1.0.1"))
        assert r.status_code == 200
    # Three wrong guesses from three addresses use up the email's allowance...
    for i in range(3):
        r = await gw.http.post(login, **attempt("victim@example.com", "guess-000", f"10.2.0.{i}"))
        assert r.status_code == 401
    r = await gw.http.post(login, **attempt("victim@example.com", PASSWORD, "10.3.0.1"))
    assert (r.status_code, r.json()) == (429, {"error": "too many login attempts, try again later"})
    assert int(r.headers["Retry-After"]) > 0
    # ...and one address guessing many emails runs out too.
    for i in range(3):
        r = await gw.http.post(login, **attempt(f"u{i}@example.com", "guess-000", "10.4.0.1"))
        assert r.status_code == 401
    r = await gw.http.post(login, **attempt("other@example.com", "guess-000", "10.4.0.1"))
    assert r.status_code == 429
    # The register route stays an admin matter, untouched by the login limit.
    r = await gw.http.post(
        "/api/v1/auth/register",
        json={"email": "new@example.com", "password": PASSWORD},
        headers={**admin(), "X-Forwarded-For": "10.4.0.1"},
    )
    assert r.status_code == 201
