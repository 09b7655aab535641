"""The one-shot SMS send (document 003): authorize the bearer token, check the Sms,
honour an Idempotency-Key, and hand the message to the [sms_api] priority list,
answering only once a gateway accepted it.

Idempotency is core/idempotency.py's, as on the /v1 face (scope `oneshot:<owner>`):
a concurrent repeat waits for the first, a later repeat with the same body gets the
first answer again without a second send, and a send that no gateway accepted
releases the key (nothing went out, so a retry may try again).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec

from ..errors import (
    BearerRequired,
    ConstraintViolations,
    GatewayError,
    InsufficientScope,
    InvalidRequest,
    NoGatewayAccepted,
    NoGatewaysConfigured,
    store_errors,
)
from ..idempotency import Answer, Idempotency, request_hash
from ..messages import MessageService
from ..routing import Router
from ..tokens import SMS_SEND_SCOPE, TokenService, VerifiedToken
from .rules import Sms, parse_sms

log = logging.getLogger(__name__)

_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class OneShotService:
    def __init__(
        self,
        tokens: TokenService,
        messages: MessageService,
        router: Router,
        idempotency: Idempotency,
    ) -> None:
        self.tokens = tokens
        self.messages = messages
        self.router = router
        self.idempotency = idempotency

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
        digest = request_hash(msgspec.json.encode([sms.sender, sms.recipient, sms.message]))

        async def deliver() -> Answer:
            await self._deliver(token.owner, sms)
            return Answer(200, b"")

        with store_errors():
            _, replayed = await self.idempotency.run(
                f"oneshot:{token.owner}", idempotency_key, digest, deliver
            )
        return replayed

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
