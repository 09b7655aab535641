"""The console's page registry: one entry per page, in menu order.

A page is a name (its URL fragment, `#name`), a title, the live topics its stream
carries, its first-render snapshot (an async function of the face's `Services`, so a
page can read any feature's service) and the script that draws it
(`static/pages/<name>.js`, which calls `Console.register(name, ...)`). A feature
that lands later adds its page with one `register_page` call from its own module;
nothing else in the console changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ...core.console import ConsoleService
from ...core.errors import InvalidRequest
from ..services import Services

Snapshot = Callable[[Services], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ActionContext:
    services: Services
    actor: str  # "console:<who>", for audit rows
    base_url: str  # where the console was reached (links shown to phones, say)


# An operator's action on a page: (context, JSON body) -> answer.
# POST /console/api/pages/<page>/actions/<action>, behind the session and the
# same-origin check; raise core errors (InvalidRequest, NotFound) for a bad body.
Action = Callable[[ActionContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    title: str
    snapshot: Snapshot
    topics: tuple[str, ...] = ()
    actions: Mapping[str, Action] = field(default_factory=dict)
    order: int = 100  # place in the menu, smallest first

    @property
    def script(self) -> str:
        return f"pages/{self.name}.js"


_PAGES: dict[str, Page] = {}


def register_page(page: Page) -> None:
    if page.name in _PAGES:
        raise ValueError(f"console page {page.name!r} registered twice")
    _PAGES[page.name] = page


def pages() -> list[Page]:
    return sorted(_PAGES.values(), key=lambda p: p.order)


def page(name: str) -> Page | None:
    return _PAGES.get(name)


async def _overview(c: ConsoleService) -> Any:
    return {**c.overview(), **c.links_view()}


async def _links(c: ConsoleService) -> Any:
    return c.links_view()


async def _messages(c: ConsoleService) -> Any:
    from ...core.console import build_query

    return {"messages": await c.messages.search(build_query(limit="50"))}


async def _users(c: ConsoleService) -> Any:
    return {"users": await c.users()}


class _UserRef(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int


async def _toggle_admin(ctx: ActionContext, body: dict[str, Any]) -> Any:
    """Make a user an admin (who may then sign in here) or not; audited by the store."""
    try:
        ref = msgspec.convert(body, _UserRef)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    flag = await ctx.services.auth.toggle_admin(ref.user_id, actor=ctx.actor)
    return {"user_id": ref.user_id, "is_admin": flag}


async def _campaigns(c: ConsoleService) -> Any:
    return {"campaigns": await c.campaigns()}


async def _filters(c: ConsoleService) -> Any:
    return {"filters": c.filters()}


async def _audit(c: ConsoleService) -> Any:
    return {"audit": await c.audit()}


def _console(fn: Callable[[ConsoleService], Awaitable[Any]]) -> Snapshot:
    async def snapshot(services: Services) -> Any:
        assert services.console is not None
        return await fn(services.console)

    return snapshot


for _page in (
    Page("overview", "Overview", _console(_overview), ("metrics", "links"), order=10),
    Page("links", "Links and pools", _console(_links), ("links",), order=20),
    Page("messages", "Messages", _console(_messages), order=30),
    Page(
        "users",
        "Users and apps",
        _console(_users),
        actions={"toggle_admin": _toggle_admin},
        order=40,
    ),
    Page("campaigns", "Campaigns", _console(_campaigns), order=200),
    Page("filters", "Filters", _console(_filters), order=210),
    Page("audit", "Audit log", _console(_audit), order=220),
):
    register_page(_page)

# The features' own pages register themselves after the built-in ones (menu order).
from . import features as features  # noqa: E402
