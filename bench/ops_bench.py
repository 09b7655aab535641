"""What the operations hooks add to one /api/v1/sms/send, measured piece by piece.

    uv run --frozen python bench/ops_bench.py [--quick]

A send passes through: the global (L1) limit, the per-app (L2) limit, the filters,
the dashboard counter at acceptance, and the outcome counters (traffic + campaign)
when the SMSC answers. Each is timed here in a tight loop on the real objects, so
the figures are the CPU cost per send (an HTTP request costs some 200-400 us in all;
see DESIGN.md). Filters are timed with 0, 1 and 3 rules of the usual kinds, and once
with a `matches()` rule, which compiles its regular expression at every call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from smsgateway.core.campaigns import CampaignCounter
from smsgateway.core.channels import PartOutcome, PartSpec, SendJob
from smsgateway.core.filters import FilterSet, compile_filter
from smsgateway.core.ops import OpsObserver
from smsgateway.core.ratelimit import AppLimiter, GlobalRateLimit
from smsgateway.core.stats import Traffic
from smsgateway.settings_ops import RateLimitSettings


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 1000)):
        fn()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def filters_with(rules: list[tuple[str, str]]) -> FilterSet:
    filters = FilterSet()
    for i, (mode, rule) in enumerate(rules):
        filters.put(compile_filter(f"f{i}", mode, rule, active=True, description="", source=""))
    return filters


async def main(quick: bool) -> None:
    n = 20_000 if quick else 200_000
    traffic = Traffic()
    campaigns = CampaignCounter(store=None)  # type: ignore[arg-type]  # never flushed here
    observer = OpsObserver(traffic, campaigns, FilterSet())
    limiter = AppLimiter(RateLimitSettings(app_rps=1e9, app_burst=10**9))
    scope: dict[str, Any] = {}
    job = SendJob("m", "S", 5, 0, "447700900123", 1, 1, 1, [PartSpec(1, b"hi", 0, 0, {})], "c")
    outcomes = [PartOutcome(1, 1, "abc", None)]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    l1 = GlobalRateLimit(app, RateLimitSettings(global_rps=1e9, global_burst=10**9))
    http_scope = {"type": "http", "path": "/api/v1/sms/send"}

    def call(asgi: Callable[..., Any]) -> Callable[[], Any]:
        def run() -> None:
            with contextlib.suppress(StopIteration):
                asgi(http_scope, None, None).send(None)

        return run

    bare = per_call_us(call(app), n)
    rows = [
        # Off (the default), the limit is not in the chain at all: zero cost.
        ("L1 global limit, on (beyond the bare app)", per_call_us(call(l1), n) - bare),
        ("L2 app limit (default on)", per_call_us(lambda: limiter.check(1, scope), n)),
        ("accepted counter", per_call_us(observer.accepted, n)),
        (
            "outcome counters (1 part, campaign)",
            per_call_us(lambda: observer.outcomes(job, outcomes), n),
        ),
    ]
    args = (1, 1, "Sender", "+447700900123", "Your code is 123456, valid 5 minutes")
    for label, rules in (
        ("filters: none", []),
        ("filters: 1 contains", [("blacklist", 'text_lower.contains("casino")')]),
        (
            "filters: 3 rules",
            [
                ("blacklist", 'text_lower.contains("casino")'),
                ("whitelist", 'destination.startsWith("+44") || app == 7'),
                ("blacklist", "size(text) > 1000"),
            ],
        ),
        (
            "filters: 1 matches() (regex each time)",
            [("blacklist", 'text.matches("(?i)v[i1]agra")')],
        ),
    ):
        fs = filters_with(rules)
        rows.append(
            (
                label,
                per_call_us(lambda fs=fs: fs.check(*args), n // 10 if "matches" in label else n),
            )
        )
    width = max(len(r[0]) for r in rows)
    for label, us in rows:
        print(f"{label:<{width}}  {us:8.3f} us/send")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
