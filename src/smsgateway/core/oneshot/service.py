"""The one-shot SMS send (document 003): authorize the bearer token, check the Sms,
honour an Idempotency-Key, and hand the message to the [sms_api] priority list,
answering only once a gateway accepted it.

Idempotency uses the store's generic table (scope `oneshot:<owner>`): the key is
claimed before anything is sent, so a concurrent repeat finds it in progress (409) and
a later repeat with the same body gets the first answer again without a second send.
A send that no gateway accepted releases the key: nothing went out, so a retry may try
again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

import msgspec

from ...store.sqlite import SqliteStore
from ..errors import (
    BearerRequired,
    ConstraintViolations,
    GatewayError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InsufficientScope,
    InvalidRequest,
    NoGatewayAccepted,
    NoGatewaysConfigured,
    store_errors,
)
from ..messages import MessageService
from ..routing import Router
from ..tokens import SMS_SEND_SCOPE, TokenService, VerifiedToken
from .rules import Sms, parse_sms

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
SWEEP_EVERY_S = 3600.0
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class OneShotService:
    def __init__(
        self,
        tokens: TokenService,
        messages: MessageService,
        router: Router,
        store: SqliteStore,
        *,
        idempotency_ttl_ms: int = IDEMPOTENCY_TTL_MS,
    ) -> None:
        self.tokens = tokens
        self.messages = messages
        self.router = router
        self.store = store
        self._idem_ttl = idempotency_ttl_ms

    async def sweep(self) -> int:
        """Delete expired idempotency rows (any scope: the table is shared); how many."""
        with store_errors():
            return await self.store.idem_purge_expired()

    async def run_sweeper(self, every_s: float = SWEEP_EVERY_S) -> None:
        """`sweep` forever, every `every_s` seconds (a runtime background task); a
        store that cannot write now is tried again next time."""
        while True:
            await asyncio.sleep(every_s)
            try:
                gone = await self.sweep()
            except GatewayError as exc:
                log.warning("idempotency sweep failed: %s", exc.message)
            else:
                if gone:
                    log.info("idempotency keys expired", extra={"deleted": gone})

    async def authorize(self, bearer: str | None) -> VerifiedToken:
        """The caller's verified token, which must carry `client.sms.send`."""
        if bearer is None:
            raise BearerRequired()
        token = await self.tokens.verify(bearer)
        if SMS_SEND_SCOPE not in token.scopes:
            raise InsufficientScope(
                f"the access token lacks the scope {SMS_SEND_SCOPE}", scope=SMS_SEND_SCOPE
            )
        return token

    async def send(
        self, token: VerifiedToken, body: Any, idempotency_key: str | None = None
    ) -> bool:
        """Send the Sms in `body`; True when this was a repeat answered from the store."""
        sms = parse_sms(body)
        if idempotency_key is None:
            await self._deliver(token.owner, sms)
            return False
        if not _KEY.fullmatch(idempotency_key):
            raise ConstraintViolations(
                ["The Idempotency-Key header must be 1 to 255 visible ASCII characters"]
            )
        scope = f"oneshot:{token.owner}"
        digest = hashlib.sha256(
            msgspec.json.encode([sms.sender, sms.recipient, sms.message])
        ).hexdigest()
        with store_errors():
            row = await self.store.idem_begin(scope, idempotency_key, digest, self._idem_ttl)
        if row is not None:
            if row.request_hash != digest:
                raise IdempotencyKeyReused()
            if row.in_progress:
                raise IdempotencyInProgress()
            return True
        try:
            await self._deliver(token.owner, sms)
        except Exception:
            # Not on cancellation (shutdown): whether the message left is unknown, so
            # the key stays claimed until it expires rather than invite a second send.
            with store_errors():
                await self.store.idem_abort(scope, idempotency_key)
            raise
        with store_errors():
            await self.store.idem_finish(scope, idempotency_key, b"")
        return False

    async def _deliver(self, owner: str, sms: Sms) -> None:
        channel = self.router.sms_api
        if channel is None:
            raise NoGatewaysConfigured()
        try:
            result = await self.messages.send(
                owner=owner,
                channel_id=channel.id,
                source=sms.sender,
                destination=sms.recipient,
                text=sms.message,
                wait="accepted",
                source_ton=sms.source_ton,
            )
        except InvalidRequest:
            raise
        except GatewayError as exc:
            # A disabled list, a store that cannot write: nothing was delegated. 003
            # answers that 500; the log keeps the cause.
            log.warning("sms api send failed: %s", exc.message, extra={"owner": owner})
            raise NoGatewayAccepted() from exc
        # `queued` after an "accepted" wait: no member answered within
        # messages.accept_wait_s. 003's 200 means a gateway accepted it, so that is no 200.
        if not result.success or result.status == "queued":
            log.warning(
                "no gateway accepted the sms: %s",
                result.error or result.status,
                extra={"owner": owner, "message_id": result.message_id},
            )
            raise NoGatewayAccepted()
