"""The console's page registry: one entry per page, in menu order.

A page is a name (its URL fragment, `#name`), a title, the live topics its stream
carries, its first-render snapshot and the script that draws it
(`static/pages/<name>.js`, which calls `Console.register(name, ...)`). A feature
that lands later adds its page with one `register_page` call from its own module;
nothing else in the console changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ...core.console import ConsoleService

Snapshot = Callable[[ConsoleService], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    title: str
    snapshot: Snapshot
    topics: tuple[str, ...] = ()

    @property
    def script(self) -> str:
        return f"pages/{self.name}.js"


_PAGES: dict[str, Page] = {}


def register_page(page: Page) -> None:
    if page.name in _PAGES:
        raise ValueError(f"console page {page.name!r} registered twice")
    _PAGES[page.name] = page


def pages() -> list[Page]:
    return list(_PAGES.values())


def page(name: str) -> Page | None:
    return _PAGES.get(name)


async def _overview(c: ConsoleService) -> Any:
    return {**(await c.overview()), **c.links_view()}


async def _links(c: ConsoleService) -> Any:
    return c.links_view()


async def _messages(c: ConsoleService) -> Any:
    from ...core.console import build_query

    return {"messages": await c.messages.search(build_query(limit="50"))}


async def _users(c: ConsoleService) -> Any:
    return {"users": await c.users()}


async def _campaigns(c: ConsoleService) -> Any:
    return {"campaigns": await c.campaigns()}


async def _filters(c: ConsoleService) -> Any:
    return {"filters": c.filters()}


async def _audit(c: ConsoleService) -> Any:
    return {"audit": await c.audit()}


for _page in (
    Page("overview", "Overview", _overview, ("metrics", "links")),
    Page("links", "Links and pools", _links, ("links",)),
    Page("messages", "Messages", _messages),
    Page("users", "Users and apps", _users),
    Page("campaigns", "Campaigns", _campaigns),
    Page("filters", "Filters", _filters),
    Page("audit", "Audit log", _audit),
):
    register_page(_page)
