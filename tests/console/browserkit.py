"""Kit for the console tests: a headless Debian Chromium driven by Playwright,
and a page wrapper that collects console errors and CSP violations.

Chromium is the system's (/usr/bin/chromium, installed by .ci/run), never a browser
Playwright downloads. Screenshots go to test-artifacts/console/ (README: Operator
console).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, ConsoleMessage, Page

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"

# Runs before any page script, outside the page's CSP (Playwright injects it).
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
    window.__reportCsp(e.violatedDirective + " blocked " + (e.blockedURI || "inline")
        + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@dataclass
class Watched:
    """A browser page whose console errors, page errors and CSP violations are kept."""

    page: Page
    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.csp == [], f"CSP violations: {self.csp}"
        assert self.errors == [], f"console errors: {self.errors}"

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


async def watched_page(context: BrowserContext, *, allow_401: bool = False) -> Watched:
    """A page on `context`. The browser logs every 4xx answer as a console error;
    `allow_401` is for tests that mean to be refused (a wrong password)."""
    page = await context.new_page()
    watched = Watched(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        text = msg.text
        if allow_401 and "401 (Unauthorized)" in text:
            return
        watched.errors.append(f"{text} @ {msg.location}")

    def on_page_error(exc: Any) -> None:
        watched.errors.append(f"page error: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)

    def on_csp(report: str) -> None:
        watched.csp.append(report)

    await page.expose_function("__reportCsp", on_csp)
    await page.add_init_script(_WATCH_CSP)
    return watched
