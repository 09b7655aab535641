"""Content and routing filters: CEL rules checked before a message is stored.

Each filter has a rule, a CEL expression (common-expression-language, a Rust CEL
implementation; compiled once per rule, never Python eval) over these variables:

    source, destination, text : string   (as the client sent them)
    text_lower                : string   (text in lower case: this CEL has no lower())
    app, link                 : int      (the caller's app id, the `esme` it named)

A blacklist filter blocks a message its rule matches; a whitelist filter blocks a
message its rule does not match. A blocked send is refused with 400 `blocked by
filter <name>` and counted per filter.

A rule that fails at run time (a type error on unusual input) is skipped for that
message and counted in `errors`: the filter then neither blocks nor clears it, so a
whitelist with a bad rule does not silently block everything. Rules are test-run on
a sample message when loaded, which catches unknown variables and most type errors
before any traffic sees them.

Cost: one evaluation context per message (about 10 us for the variables in use),
then about 1 us per rule for `contains`/`startsWith`/comparisons. `matches()` builds
its regular expression at every evaluation (some 200 us): prefer the string
functions on a busy gateway.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequest

if TYPE_CHECKING:
    from cel import cel as _cel_types

VARIABLES = ("source", "destination", "text", "text_lower", "app", "link")
_SAMPLE: dict[str, Any] = {
    "source": "Sender",
    "destination": "+447700900123",
    "text": "Sample text",
    "text_lower": "sample text",
    "app": 1,
    "link": 1,
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RULE_MAX = 4096
DESCRIPTION_MAX = 512

_cel: ModuleType | None = None


def _load_cel() -> ModuleType:
    """The CEL extension module alone.

    `import cel` also imports the package's command-line tool (typer, rich,
    prompt_toolkit): 1.4 s at start-up for nothing the gateway uses. The compiled
    extension, loaded by itself, takes a few milliseconds. Falls back to the
    package import if the layout ever changes.
    """
    global _cel
    if _cel is not None:
        return _cel
    module: ModuleType | None = None
    spec = importlib.util.find_spec("cel")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(folder, "cel" + suffix)
                if not os.path.exists(path):
                    continue
                loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
                ext_spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
                if ext_spec is not None:
                    module = importlib.util.module_from_spec(ext_spec)
                    loader.exec_module(module)
                    break
            if module is not None:
                break
    if module is None:  # pragma: no cover - only if the wheel's layout changes
        import cel

        module = cel
    _cel = module
    return module


class FilterError(InvalidRequest):
    default_message = "invalid filter"


class BlockedByFilter(InvalidRequest):
    code = "blocked_by_filter"
    default_message = "blocked by filter"


@dataclass
class Filter:
    name: str
    active: bool
    mode: str  # "blacklist" | "whitelist"
    description: str
    rule: str
    source: str  # "settings" (read-only) or "api"
    program: _cel_types.Program
    variables: frozenset[str]
    blocked: int = 0
    errors: int = 0

    @property
    def blacklist(self) -> bool:
        return self.mode == "blacklist"


def compile_filter(
    name: str, mode: str, rule: str, *, active: bool, description: str, source: str
) -> Filter:
    """Validate and compile one filter; FilterError (400) names what is wrong."""
    if not _NAME.match(name):
        raise FilterError("filter name must be 1-64 characters of A-Z a-z 0-9 _ . -")
    if mode not in ("blacklist", "whitelist"):
        raise FilterError("filter mode must be blacklist or whitelist")
    if not rule.strip() or len(rule) > RULE_MAX:
        raise FilterError(f"filter rule must be 1 to {RULE_MAX} characters")
    if len(description) > DESCRIPTION_MAX:
        raise FilterError(f"filter description must be at most {DESCRIPTION_MAX} characters")
    cel = _load_cel()
    try:
        program = cel.compile(rule)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise FilterError(f"filter {name}: rule does not compile: {_first_line(exc)}") from None
    used = frozenset(program.variables())
    unknown = sorted(used - set(VARIABLES))
    if unknown:
        raise FilterError(
            f"filter {name}: unknown variable(s) {', '.join(unknown)};"
            f" rules may use {', '.join(VARIABLES)}"
        )
    try:
        sample = program.execute(cel.Context({k: _SAMPLE[k] for k in used}))
    except Exception as exc:  # the extension raises several kinds (ZeroDivisionError...)
        raise FilterError(
            f"filter {name}: rule fails on a sample message: {_first_line(exc)}"
        ) from None
    if not isinstance(sample, bool):
        raise FilterError(f"filter {name}: rule must be true or false, not {type(sample).__name__}")
    return Filter(
        name=name,
        active=active,
        mode=mode,
        description=description,
        rule=rule,
        source=source,
        program=program,
        variables=used,
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class FilterSet:
    """The filters in force, in name order; `check` is on every send's path."""

    def __init__(self) -> None:
        self._all: dict[str, Filter] = {}
        self._active: tuple[Filter, ...] = ()
        self._variables: tuple[str, ...] = ()
        self._lower = False
        self._context: Any = None

    def _rebuild(self) -> None:
        self._active = tuple(f for _, f in sorted(self._all.items()) if f.active)
        used: set[str] = set()
        for f in self._active:
            used |= f.variables
        self._variables = tuple(v for v in VARIABLES if v in used)
        self._lower = "text_lower" in used
        # One context object reused for every message: building one costs more than
        # refilling it, and the loop never runs two checks at once.
        self._context = _load_cel().Context() if self._active else None

    def put(self, f: Filter) -> None:
        self._all[f.name] = f
        self._rebuild()

    def remove(self, name: str) -> Filter | None:
        f = self._all.pop(name, None)
        self._rebuild()
        return f

    def get(self, name: str) -> Filter | None:
        return self._all.get(name)

    def all(self) -> list[Filter]:
        return [f for _, f in sorted(self._all.items())]

    def check(self, app: int, link: int, source: str, destination: str, text: str) -> None:
        """Raise BlockedByFilter for the first active filter that blocks the message."""
        active = self._active
        if not active:
            return
        values: dict[str, Any] = {
            "source": source,
            "destination": destination,
            "text": text,
            "app": app,
            "link": link,
        }
        if self._lower:
            values["text_lower"] = text.lower()
        ctx = self._context
        ctx.update({v: values[v] for v in self._variables})
        for f in active:
            try:
                matched = f.program.execute(ctx) is True
            except Exception:  # any evaluation error: skip this filter for this message
                f.errors += 1
                continue
            if matched is f.blacklist:
                f.blocked += 1
                raise BlockedByFilter(f"blocked by filter {f.name}")
