"""The virtual-numbers face (document 002): `/api/init`, `/api/get-number`, and the
calls around them (release, my numbers, OTPs received), keyed by `{api_key}` in
the path. Bodies: `{"status": "success", "data": ...}` and
`{"status": "error", "message": ...}`; statuses and messages from the core catalogue.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from ...core.errors import (
    GatewayError,
    Internal,
    NumbersMissingCredentials,
    ServiceFetchFailed,
    UnableToGetNumber,
    from_exception,
)
from ...core.numbers.formats import check_format
from ...core.numbers.guard import KeyGuard
from ...core.numbers.service import NumbersService
from ...store.numbers import NumberUserRow
from ..http import client_ip, decode_json, encode_json

if TYPE_CHECKING:
    from ..rest import NativeApi

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class ReleaseBody(msgspec.Struct):
    phone_number: str


class NumbersError(msgspec.Struct):
    status: str
    message: str


class CountryOut(msgspec.Struct):
    id: int
    name: str
    phone_code: str
    iso: str


class OperatorOut(msgspec.Struct):
    id: int
    name: str
    country_id: int


class InitData(msgspec.Struct):
    countries: list[CountryOut]
    operators: list[OperatorOut]


class InitAnswer(msgspec.Struct):
    status: str
    data: InitData


class PhoneData(msgspec.Struct):
    phone_number: str


class PhoneAnswer(msgspec.Struct):
    status: str
    data: PhoneData


class MyNumber(msgspec.Struct):
    phone_number: str
    country_id: int
    operator_id: int | None
    assigned_at: int
    expires_at: int


class MyNumbersData(msgspec.Struct):
    numbers: list[MyNumber]


class MyNumbersAnswer(msgspec.Struct):
    status: str
    data: MyNumbersData


class OtpOut(msgspec.Struct):
    phone_number: str
    otp_code: str | None
    provider: str
    sender: str
    sms_text: str
    received_at: int


class OtpsData(msgspec.Struct):
    otps: list[OtpOut]


class OtpsAnswer(msgspec.Struct):
    status: str
    data: OtpsData


def _ok(data: Any) -> Response:
    return Response(
        encode_json({"status": "success", "data": data}), 200, media_type="application/json"
    )


def _error(status: int, message: str) -> Response:
    return Response(
        encode_json({"status": "error", "message": message}), status, media_type="application/json"
    )


_FACE_PATH = re.compile(r"^/api/(?:init|get-number|release-number|my-numbers|otps)(?:/|$)")
_KNOWN_PATH = re.compile(r"^/api/(?:init|get-number|release-number|my-numbers|otps)(?:/[^/]*)?$")


class FaceFallback(BaseRoute):
    """Unknown paths and wrong methods under the 002 paths answer in 002's body shape
    (placed after the face's routes: a path-only match of theirs comes here)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and _FACE_PATH.match(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _KNOWN_PATH.match(scope["path"]):
            response = _error(405, "method not allowed")
        else:
            response = _error(404, "not found")
        await response(scope, receive, send)


class NumbersFace:
    def __init__(self, api: NativeApi, numbers: NumbersService) -> None:
        self.api = api
        self.numbers = numbers
        self._countries: list[CountryOut] | None = None
        self._guard = KeyGuard(numbers.settings.failed_auth_per_minute)

    def endpoint(self, route: str, handler: Handler, fallback: type[Internal]) -> Handler:
        """002's error body for every failure; an unexpected one is `fallback` (500)."""
        metrics = self.api.s.metrics
        latency = metrics.latency.labels(route)

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except GatewayError as exc:
                response = _error(exc.http_status, exc.message)
            except Exception as exc:
                error = from_exception(exc)
                if error.http_status == 500:
                    log.exception("unhandled error", extra={"route": route})
                    error = fallback()
                response = _error(error.http_status, error.message)
            latency.observe(time.perf_counter() - started)
            metrics.requests.labels(route, str(response.status_code)).inc()
            return response

        return wrapped

    async def _user(self, request: Request) -> NumberUserRow:
        key = str(request.path_params.get("api_key", ""))
        user_id = request.query_params.get("user_id")
        return await self._guard.guard(
            client_ip(request, self.api.trusted),
            lambda: self.numbers.authenticate(key, user_id),
        )

    async def no_key(self, request: Request) -> Response:
        raise NumbersMissingCredentials()

    async def init(self, request: Request) -> Response:
        await self._user(request)
        countries, operators = await self.numbers.init_data()
        if self._countries is None:
            self._countries = [CountryOut(c.id, c.name, c.phone_code, c.iso) for c in countries]
        return _ok(
            InitData(
                self._countries, [OperatorOut(op.id, op.name, op.country_id) for op in operators]
            )
        )

    async def get_number(self, request: Request) -> Response:
        user = await self._user(request)
        q = request.query_params
        phone = await self.numbers.get_number(
            user, q.get("country_id"), q.get("operator_id"), q.get("number_format")
        )
        return _ok(PhoneData(phone))

    async def release(self, request: Request) -> Response:
        user = await self._user(request)
        body = decode_json(await self.api.read(request), ReleaseBody)
        phone = await self.numbers.release(user, body.phone_number)
        return _ok({"phone_number": phone, "released": True})

    async def my_numbers(self, request: Request) -> Response:
        user = await self._user(request)
        rows = await self.numbers.my_numbers(user)
        fmt = check_format(request.query_params.get("number_format") or user.number_format)
        return _ok(
            MyNumbersData(
                [
                    MyNumber(
                        self.numbers.render(r.phone_number, fmt),
                        r.country_id,
                        r.operator_id,
                        r.assigned_at or 0,
                        r.assigned_until or 0,
                    )
                    for r in rows
                ]
            )
        )

    async def otps(self, request: Request) -> Response:
        user = await self._user(request)
        rows = await self.numbers.otps(user, request.query_params.get("phone_number"))
        return _ok(
            OtpsData(
                [
                    OtpOut(
                        r.phone_number, r.otp_code, r.provider, r.sender, r.sms_text, r.received_at
                    )
                    for r in rows
                ]
            )
        )

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint
        table: list[tuple[str, str, str, Handler, type[Internal]]] = [
            ("GET", "/api/init", "numbers_init", self.init, ServiceFetchFailed),
            ("GET", "/api/get-number", "numbers_get", self.get_number, UnableToGetNumber),
            ("POST", "/api/release-number", "numbers_release", self.release, Internal),
            ("GET", "/api/my-numbers", "numbers_mine", self.my_numbers, Internal),
            ("GET", "/api/otps", "numbers_otps", self.otps, Internal),
        ]
        routes: list[BaseRoute] = []
        for method, path, name, handler, fallback in table:
            routes.append(
                Route(f"{path}/{{api_key}}", e(name, handler, fallback), methods=[method])
            )
            for bare in (path, f"{path}/"):
                routes.append(Route(bare, e(name, self.no_key, fallback), methods=[method]))
        routes.append(FaceFallback())
        return routes
