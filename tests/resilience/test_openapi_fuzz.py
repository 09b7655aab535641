"""Schema-driven fuzzing: schemathesis reads GET /openapi.json of a live gateway (admin
key set, a user's JWT, the simulator bound and not failing submits) and, for every
operation, sends a bounded number of generated requests, valid ones (positive) and
ones that break the schema (negative).

Asserted for every answer: no 5xx unless the document declares that status for that
operation (500 on /api/v1/sms/send is an SMSC refusal; 503 is a disabled link, a
missing license key or storage), every status is one the document lists, and every
body the document describes matches its schema.

The gateway runs in this process's event loop; schemathesis (requests, hypothesis)
runs in a worker thread. RESIL_SCHEMA_EXAMPLES sets the examples per operation and
mode (default 10); RESIL_SEED replays a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from resil_kit import ADMIN_KEY, BIG_KEEP, SimFactory, user_headers
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from gwkit import Gateway, link_to, make_settings

EXAMPLES = int(os.environ.get("RESIL_SCHEMA_EXAMPLES", "10"))
SEED = int(os.environ.get("RESIL_SEED") or random.randrange(1, 1_000_000))


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: dict[str, str] = field(default_factory=dict)
    operations: int = 0


def fuzz(base: str, auth: dict[str, str], examples: int) -> Report:
    """Runs in a worker thread: blocking HTTP while the gateway serves on the loop."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    report = Report()
    for result in schema.get_all_operations():
        op = result.ok()
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with contextlib.suppress(Unsatisfiable):  # no inputs: nothing to break
                runner(op, mode, base, auth, examples, report)()
    return report


def runner(
    op: Any, mode: GenerationMode, base: str, auth: dict[str, str], examples: int, report: Report
) -> Callable[[], None]:
    declared = {int(s) for s in op.definition.raw["responses"] if s.isdigit()}
    label = f"{op.method.upper()} {op.path}"
    through_link = label == "POST /api/v1/sms/send" and mode is GenerationMode.POSITIVE

    @seed(SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if through_link and isinstance(case.body, dict):
            # Through the real link with valid addresses, so the generated texts (any
            # Unicode, any length) go all the way: encoding, splitting, the SMSC.
            case.body.update(esme=1, source="Fuzz", destination="+4915100000001")
        # Our credentials win over generated ones, so bodies get past the auth.
        response = case.call(base_url=base, headers={**(case.headers or {}), **auth}, timeout=15)
        report.requests += 1
        status = response.status_code
        report.statuses[status] += 1
        if status >= 500 and status not in declared:
            key = f"{label} -> {status} (undeclared)"
            report.problems.setdefault(key, f"{case.body!r:.200} -> {response.text:.200}")
            return
        try:
            case.validate_response(
                response, checks=[status_code_conformance, response_schema_conformance]
            )
        except (Exception, BaseExceptionGroup) as exc:
            key = f"{label} -> {status}: {type(exc).__name__}"
            report.problems.setdefault(key, f"{str(exc)[:300]} body={case.body!r:.200}")

    return run


async def test_schema_driven_fuzzing_finds_no_undeclared_5xx(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    print(f"\nRESIL_SEED={SEED}")
    sim = await make_sim(keep_messages=BIG_KEEP, fail_rate=0.0)
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY))
    await gw.bound()
    # Small ids are the fuzzer's favourites (it may delete or demote them): bystanders.
    for n in range(30):
        await gw.register(f"bystander{n}@example.com")
    auth = await user_headers(gw.http) | {"X-Admin-Key": ADMIN_KEY}
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    report = await asyncio.to_thread(fuzz, base, auth, EXAMPLES)
    print(
        f"schemathesis: {report.operations} operations, {report.requests} requests, "
        f"statuses {dict(sorted(report.statuses.items()))}, SMSC submits {sim.submits}"
    )
    assert report.operations >= 40
    assert report.requests >= report.operations * EXAMPLES
    assert report.problems == {}, "\n".join(f"{k}: {v}" for k, v in report.problems.items())
    r = await gw.http.get("/healthy")
    assert r.json() == {"status": "ok"}


async def test_openapi_document_describes_every_input(
    tmp_path: Path, make_gateway: Any, make_sim: SimFactory
) -> None:
    """What the fuzzer relies on: every operation that reads a body documents it, path
    parameters carry their real types, and every body may be refused with 413."""
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.runtime.rest_port}") as http:
        doc = (await http.get("/openapi.json")).json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            if method in ("post", "put") and not path.endswith("/toggle-admin"):
                assert "requestBody" in op, where
                assert "413" in op["responses"], where
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    expected = "integer" if param["name"] == "id" else "string"
                    assert param["schema"]["type"] == expected, (where, param)
    campaigns = doc["paths"]["/api/v1/admin/metrics/campaigns"]["get"]
    assert {p["name"] for p in campaigns["parameters"]} == {"page", "limit"}
    filters = doc["paths"]["/api/v1/admin/filters"]["post"]["requestBody"]
    assert filters["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FilterBody"
    }
