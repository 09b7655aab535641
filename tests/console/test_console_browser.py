"""The console in a real browser (headless Debian Chromium) against a real gateway
(the SMSC simulator as its SMSC, a real SQLite file): sign in, live figures, link
control, message search, every page, /docs, sign out; and, on every page, no console
error and no CSP violation."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from browserkit import ARTIFACTS, watched_page
from playwright.async_api import Browser, Page, expect

from gwkit import ADMIN_KEY, Gateway, eventually, link_to, make_settings
from smsgateway.devicesim import DeviceSim, SimConfig
from smsgateway.settings import PoolSettings
from smsgateway.settings_channels import ListSettings
from smsgateway.settings_console import ConsoleSettings


async def sign_in(page: Page, base: str, key: str = ADMIN_KEY) -> None:
    await page.goto(f"{base}/console")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#admin-key", key)
    await page.click("#login-key button[type=submit]")
    await expect(page.locator("#logout")).to_be_visible()


async def open_page(page: Page, name: str) -> None:
    await page.click(f'#nav a[data-page="{name}"]')
    await expect(page.locator(f"#page-{name}")).to_have_attribute("data-ready", "true")


async def link_status(gw: Gateway, headers: dict[str, str]) -> dict[str, Any]:
    r = await gw.http.get("/api/v1/dashboard/smpp-links", headers=headers)
    assert r.status_code == 200, r.text
    row: dict[str, Any] = next(x for x in r.json()["data"] if x["id"] == 1)
    return row


async def test_operator_walks_through_the_console(
    tmp_path: Path, make_sim: Any, make_gateway: Any, browser: Browser
) -> None:
    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1), link_to(sim, 2)],
        [PoolSettings(id=100, name="pool-1", links=[1, 2])],
    )
    settings.smpp.lists = [ListSettings(id=200, name="failover", members=[1, 100])]
    settings.validate()
    gw: Gateway = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    user = await gw.user("sender@example.com")
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    w = await watched_page(context)
    page = w.page

    # Sign in with the admin key; the overview shows link 1 bound.
    await sign_in(page, base)
    await expect(page.locator("#page-overview")).to_have_attribute("data-ready", "true")
    link_1 = page.locator("#overview-links tbody tr", has_text="link-1")
    await expect(link_1.locator(".badge")).to_have_text("BOUND")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")

    # Traffic through the API moves the counters and the per-second chart.
    before = int(await page.locator("#page-overview").get_attribute("data-messages-total") or 0)
    sent = []
    for n in range(12):
        r = await gw.send(user, destination=f"+4477009001{n:02d}", message=f"hello {n}")
        assert r.status_code == 200, r.text
        sent.append(r.json()["message_id"])
    await page.wait_for_function(
        "n => Number(document.querySelector('#page-overview').dataset.messagesTotal) >= n",
        arg=before + 12,
    )
    await page.wait_for_function(
        "() => Number(document.querySelector('#chart-seconds').dataset.messages) >= 12"
    )
    await expect(page.locator("#stat-messages")).not_to_have_text("0")
    await page.wait_for_timeout(300)  # let uPlot paint the last frame for the screenshot
    await w.shot("overview")

    # Disable link 1 with a reason: DISABLED on the page and in the dashboard API.
    await open_page(page, "links")
    row = page.locator('#links-table tr[data-link-id="1"]')
    await expect(row.locator(".badge")).to_have_text("BOUND")
    await row.locator('input[name="reason"]').fill("SMSC maintenance")
    await row.locator('button[data-action="disable"]').click()
    await expect(row.locator(".badge")).to_have_text("DISABLED")
    await expect(row.locator(".col-reason")).to_have_text("SMSC maintenance")
    status = await link_status(gw, user)
    assert status["status"] == "DISABLED" and status["reason"] == "SMSC maintenance"
    assert status["enabled"] is False
    await expect(page.locator("#lists-table")).to_contain_text("link link-1 (DISABLED)")
    await expect(page.locator("#pools-table")).to_contain_text("pool-1")
    await w.shot("links-disabled")

    # ...and enable it again: it binds, and the live stream says so.
    await row.locator('button[data-action="enable"]').click()
    await expect(row.locator(".badge")).to_have_text("BOUND", timeout=15_000)
    assert (await link_status(gw, user))["status"] == "BOUND"
    await w.shot("links")

    # Find a sent message by its destination and see its part delivered.
    target = sent[3]
    await open_page(page, "messages")
    await page.fill('#message-search input[name="destination"]', "+447700900103")
    await page.click("#message-search button[type=submit]")
    link = page.locator("#messages-table a.message-link")
    await expect(link).to_have_count(1)
    await expect(link).to_have_text(target)
    await w.shot("messages")
    await link.click()
    parts = page.locator("#parts-table tbody tr")
    await expect(parts).to_have_count(1)
    facts = page.locator("#message-detail .facts")
    await expect(facts).to_contain_text("+447700900103")
    await expect(facts).to_contain_text("hello 3")
    for _ in range(50):  # the receipt may still be on its way: reload until it lands
        if await parts.locator(".state").inner_text() == "delivered":
            break
        await page.wait_for_timeout(100)
        await page.reload()
        await expect(page.locator("#page-messages")).to_have_attribute("data-ready", "true")
    await expect(parts.locator(".state")).to_have_text("delivered")
    smsc_id = await parts.locator("td").nth(2).inner_text()
    assert smsc_id and smsc_id != "—"
    attempts = page.locator("#attempts-table tbody tr")
    await expect(attempts).to_have_count(1)
    await expect(attempts.locator(".state")).to_have_text("accepted")
    await expect(attempts).to_contain_text("link 1")
    await w.shot("message")

    # Every other page renders its data.
    await open_page(page, "users")
    await expect(page.locator("#users-table")).to_contain_text("sender@example.com")
    await w.shot("users")
    await open_page(page, "campaigns")
    await w.shot("campaigns")
    await open_page(page, "filters")
    await w.shot("filters")
    await open_page(page, "audit")
    audit = page.locator("#audit-table")
    await expect(audit).to_contain_text("link.disable")
    await expect(audit).to_contain_text("console:admin-key")
    await expect(audit).to_contain_text("SMSC maintenance")
    await w.shot("audit")

    # The API document, linked from the console, rendered under the same CSP.
    await page.click("#docs-link")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("smsgateway")
    await expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/admin/messages")
    await w.shot("docs")

    # Sign out: the form is back and the old cookie opens nothing.
    await page.goto(f"{base}/console")
    await expect(page.locator("#logout")).to_be_visible()
    cookies = await context.cookies()
    session = next(c for c in cookies if c["name"] == "smsgw_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-notice")).to_have_text("Signed out.")
    r = await gw.http.get(
        "/console/api/pages/overview", headers={"Cookie": f"smsgw_console={session['value']}"}
    )
    assert r.status_code == 401
    await w.shot("signed-out")
    w.assert_clean()
    await context.close()
    assert (ARTIFACTS / "overview.png").stat().st_size > 10_000


async def test_an_admin_user_signs_in_and_a_plain_user_cannot(
    tmp_path: Path, make_sim: Any, make_gateway: Any, browser: Browser
) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    admin_reg = await gw.register("boss@example.com")
    await gw.register("plain@example.com")
    context = await browser.new_context()
    w = await watched_page(context, allow_401=True)  # the plain user's refusal
    page = w.page
    # The operator makes boss an admin from the Users page, and signs out.
    await sign_in(page, base)
    await open_page(page, "users")
    boss = page.locator("#users-table tbody tr", has_text="boss@example.com")
    await boss.locator('button[data-action="toggle-admin"]').click()
    await expect(boss.locator('button[data-action="toggle-admin"]')).to_have_text("Remove admin")
    assert await gw.runtime.auth.is_admin(admin_reg["user_id"])  # type: ignore[union-attr]
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#login-email", "plain@example.com")
    await page.fill("#login-password", "correct-horse-9")
    await page.click("#login-user button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("invalid email or password")
    await page.fill("#login-email", "boss@example.com")
    await page.click("#login-user button[type=submit]")
    await expect(page.locator("#who")).to_have_text(f"user:{admin_reg['user_id']}")
    await expect(page.locator("#page-overview")).to_have_attribute("data-ready", "true")
    # The page holds no secret: not the admin key, not the session id.
    html = await page.content()
    cookie = next(c for c in await context.cookies() if c["name"] == "smsgw_console")
    assert ADMIN_KEY not in html and cookie["value"] not in html
    assert await page.evaluate("document.cookie") == ""
    w.assert_clean()
    await context.close()


async def test_the_session_expires_in_the_open_page(
    tmp_path: Path, make_sim: Any, make_gateway: Any, browser: Browser
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    settings.console = ConsoleSettings(session_ttl_s=5, heartbeat_s=1.0)
    gw: Gateway = await make_gateway(settings)
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    context = await browser.new_context()
    w = await watched_page(context)
    page = w.page
    await sign_in(page, base)
    cookie = next(c for c in await context.cookies() if c["name"] == "smsgw_console")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    # The live stream ends the session when it expires; the page asks to sign in.
    await expect(page.locator("#login")).to_be_visible(timeout=15_000)
    await expect(page.locator("#login-notice")).to_contain_text("expired")
    r = await gw.http.get(
        "/console/api/pages/overview", headers={"Cookie": f"smsgw_console={cookie['value']}"}
    )
    assert r.status_code == 401
    await w.shot("session-expired")
    w.assert_clean()
    await context.close()


@pytest.fixture
def other_origin() -> Iterator[tuple[str, list[str]]]:
    """A page on another origin (same host, another port: same-site for cookies, so
    SameSite=Strict alone would not stop it) that POSTs to the console."""
    target: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/attack.js":
                body = (
                    b"fetch(document.body.dataset.target, {method: 'POST', mode: 'no-cors',"
                    b" credentials: 'include', headers: {'Content-Type': 'text/plain'},"
                    b" body: JSON.stringify({enabled: false, reason: 'pwned'})})"
                    b".then(() => { document.title = 'sent'; });"
                )
                kind = "text/javascript"
            else:
                body = (
                    f'<!doctype html><body data-target="{target[0]}">'
                    '<script src="/attack.js"></script></body>'
                ).encode()
                kind = "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", target
    server.shutdown()
    server.server_close()


async def test_a_cross_origin_post_is_refused(
    tmp_path: Path,
    make_sim: Any,
    make_gateway: Any,
    browser: Browser,
    other_origin: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="smsgateway.api.console")
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    evil, target = other_origin
    target.append(f"{base}/console/api/links/1/toggle")
    context = await browser.new_context()
    w = await watched_page(context)
    await sign_in(w.page, base)
    failed: list[Any] = []
    attacker = await context.new_page()
    attacker.on("requestfailed", lambda r: failed.append(r) if r.url.endswith("/toggle") else None)
    await attacker.goto(f"{evil}/")
    await eventually(lambda: failed)
    request = failed[0]
    # Same site (another port), so the SameSite=Strict cookie went along: only the
    # server's Fetch Metadata check stands between the page and the link.
    refusals = await eventually(
        lambda: [r for r in caplog.records if r.getMessage().startswith("cross-origin")]
    )
    assert refusals[0].sec_fetch_site == "same-site"  # type: ignore[attr-defined]
    assert refusals[0].with_session is True  # type: ignore[attr-defined]
    # The answer (403) is not even readable there (Cross-Origin-Resource-Policy).
    assert "BLOCKED_BY_RESPONSE" in (request.failure or "")
    cookie = next(c for c in await context.cookies() if c["name"] == "smsgw_console")
    r = await gw.http.post(
        "/console/api/links/1/toggle",
        json={"enabled": False, "reason": "pwned"},
        headers={"Cookie": f"smsgw_console={cookie['value']}", "Sec-Fetch-Site": "same-site"},
    )
    assert r.status_code == 403 and r.json() == {"error": "cross-origin request refused"}
    await asyncio.sleep(0.2)
    link = gw.runtime.router.links[1]  # type: ignore[union-attr]
    assert link.enabled and link.status == "BOUND"
    audit = await gw.runtime.store.list_audit()  # type: ignore[union-attr]
    assert not [a for a in audit if a.action == "link.disable"]
    w.assert_clean()
    await context.close()


async def test_number_users_and_numbers_from_the_console(
    tmp_path: Path, make_gateway: Any, browser: Browser
) -> None:
    gw: Gateway = await make_gateway(make_settings(tmp_path, []))
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    w = await watched_page(context)
    page = w.page
    await sign_in(page, base)
    await open_page(page, "numbers")
    form = page.locator("#number-user-create")
    await form.locator('input[name="email"]').fill("reseller@example.com")
    await form.locator('input[name="name"]').fill("Reseller")
    await form.locator("button[type=submit]").click()
    secret = page.locator("#number-user-secret")
    await expect(secret).to_contain_text("not shown again")
    api_key = await secret.locator("code.secret").first.inner_text()
    assert api_key.startswith("nk_")
    row = page.locator("#number-users-table tbody tr", has_text="reseller@example.com")
    await expect(row).to_contain_text("Reseller")
    await w.shot("numbers-user-created")
    # The page never shows the key again.
    await page.reload()
    await expect(page.locator("#page-numbers")).to_have_attribute("data-ready", "true")
    assert api_key not in await page.content()
    # The key shown once works against the numbers API (002) while the user is approved.
    assert (await gw.http.get(f"/api/my-numbers/{api_key}")).status_code == 200
    row = page.locator("#number-users-table tbody tr", has_text="reseller@example.com")
    await row.locator('button[data-action="approved"]', has_text="Withdraw approval").click()
    await expect(row.locator('button[data-action="approved"]')).to_have_text("Approve")
    assert (await gw.http.get(f"/api/my-numbers/{api_key}")).status_code == 401
    await row.locator('button[data-action="approved"]').click()
    await expect(row.locator('button[data-action="approved"]')).to_have_text("Withdraw approval")
    assert (await gw.http.get(f"/api/my-numbers/{api_key}")).status_code == 200
    # Import two numbers into the pool.
    await page.fill('#numbers-import textarea[name="numbers"]', "+447911123456\n+447911123457")
    await page.click("#numbers-import button[type=submit]")
    await expect(page.locator("#page-numbers .notice")).to_contain_text("2 added")
    table = page.locator("#numbers-table")
    await expect(table).to_contain_text("+447911123456")
    await expect(table).to_contain_text("+447911123457")
    await w.shot("numbers")
    audit = await gw.runtime.store.list_audit()  # type: ignore[union-attr]
    actions = {(a.actor, a.action) for a in audit}
    assert ("console:admin-key", "number_user.create") in actions
    assert ("console:admin-key", "numbers.import") in actions
    w.assert_clean()
    await context.close()


async def test_otp_projects_keys_and_a_phone_linked_by_qr(
    tmp_path: Path, make_gateway: Any, browser: Browser
) -> None:
    gw: Gateway = await make_gateway(make_settings(tmp_path, []))
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    w = await watched_page(context)
    page = w.page
    await sign_in(page, base)
    await open_page(page, "projects")
    await page.fill('#project-create input[name="name"]', "Shop")
    await page.click("#project-create button[type=submit]")
    card = page.locator("section.project", has_text="Shop")
    await expect(card).to_contain_text("No phone linked")

    # An API key, shown once; it opens the /v1 API until it is revoked.
    await card.locator('button[data-action="create-key"]').click()
    shown = page.locator("#project-key code.secret")
    await expect(shown).to_have_count(1)
    api_key = await shown.inner_text()
    assert (await gw.http.get("/v1/status", headers={"X-SMX-API-Key": api_key})).status_code == 200
    await page.reload()
    await expect(page.locator("#page-projects")).to_have_attribute("data-ready", "true")
    assert api_key not in await page.content()
    card = page.locator("section.project", has_text="Shop")
    await card.locator('button[data-action="revoke-key"]').click()
    await expect(card.locator('button[data-action="revoke-key"]')).to_have_count(0)
    assert (await gw.http.get("/v1/status", headers={"X-SMX-API-Key": api_key})).status_code == 401

    # Link a phone: the QR is drawn on the page with the code the app signs in with.
    await card.locator('button[data-action="link-device"]').click()
    qr = page.locator("#device-link img.qr")
    await expect(qr).to_be_visible()
    await page.wait_for_function(
        "() => { const i = document.querySelector('#device-link img.qr');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )
    code = await page.locator("#device-link code.link-code").inner_text()
    server = await page.locator("#device-link code.server-url").inner_text()
    await w.shot("projects-device-link")
    sim = DeviceSim(SimConfig(server=server, code=code, name="Pixel (devicesim)", retry_s=0.05))
    try:
        await sim.start()
        # The page looks again until the phone is there, then shows it online.
        state = page.locator("section.project", has_text="Shop").locator(".device-state")
        await expect(state).to_have_text("online", timeout=15_000)
        await expect(page.locator("section.project", has_text="Shop")).to_contain_text(
            "Pixel (devicesim)"
        )
        await w.shot("projects")
        await page.locator('button[data-action="revoke-device"]').click()
        await expect(page.locator("section.project", has_text="Shop")).to_contain_text(
            "No phone linked"
        )
    finally:
        await sim.stop()
    audit = {a.action for a in await gw.runtime.store.list_audit()}  # type: ignore[union-attr]
    assert {"project.create", "project.key.create", "project.key.revoke"} <= audit
    assert {"device.link", "device.revoke"} <= audit
    w.assert_clean()
    await context.close()


async def test_oauth_clients_from_the_console(
    tmp_path: Path, make_gateway: Any, browser: Browser
) -> None:
    gw: Gateway = await make_gateway(make_settings(tmp_path, []))
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    w = await watched_page(context)
    page = w.page
    await sign_in(page, base)
    await open_page(page, "oauth")
    await page.fill('#oauth-client-create input[name="name"]', "billing")
    await page.click("#oauth-client-create button[type=submit]")
    client_id = await page.locator("#oauth-client-secret code.client-id").inner_text()
    secret = await page.locator("#oauth-client-secret code.secret").inner_text()
    row = page.locator("#oauth-clients-table tbody tr", has_text="billing")
    await expect(row).to_contain_text("client.sms.send")
    await w.shot("oauth")

    async def token_status() -> int:
        r = await gw.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        return r.status_code

    assert await token_status() == 200
    await row.locator('button[data-action="delete"]').click()
    await expect(page.locator("#oauth-clients-table tbody tr")).to_have_count(0)
    assert await token_status() == 401
    w.assert_clean()
    await context.close()
