"""`sms.v1.SmsService` over gRPC: the same MessageService calls as the REST sms routes.

An SMSC refusal is an answer, not a failed call: SendMessage returns OK with
`success = false` and the SMPP status name in `error`, the body REST sends with 500.
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from ...core.errors import GatewayError, InvalidRequest
from ...core.messages import MessageService, SendRequest
from .gen import sms_pb2
from .rpc import Access, Caller, Rpc

MAX_BATCH = 1000


class SmsServicer:
    descriptor: ServiceDescriptor = sms_pb2.DESCRIPTOR.services_by_name["SmsService"]

    def __init__(self, messages: MessageService) -> None:
        self.messages = messages

    def rpcs(self) -> list[Rpc[Any, Any]]:
        pb = sms_pb2
        return [
            Rpc(
                "SendMessage",
                Access.TOKEN,
                pb.SendMessageRequest,
                pb.SendMessageResponse,
                self.send_message,
            ),
            Rpc("SmsInfo", Access.TOKEN, pb.SmsInfoRequest, pb.SmsInfoResponse, self.sms_info),
            Rpc(
                "CheckESME",
                Access.TOKEN,
                pb.CheckESMERequest,
                pb.CheckESMEResponse,
                self.check_esme,
            ),
            Rpc(
                "SendMessages",
                Access.TOKEN,
                pb.SendMessagesRequest,
                pb.SendMessagesResponse,
                self.send_messages,
            ),
        ]

    async def send_message(
        self, request: sms_pb2.SendMessageRequest, caller: Caller
    ) -> sms_pb2.SendMessageResponse:
        return await self._send(request, caller)

    async def send_messages(
        self, request: sms_pb2.SendMessagesRequest, caller: Caller
    ) -> sms_pb2.SendMessagesResponse:
        """Each message goes through the same path as SendMessage, concurrently.

        A message the core refuses (validation, routing) becomes a result with
        success = false instead of failing the call, so one bad entry cannot cost the
        caller the answers for all the others it did send.
        """
        if len(request.messages) > MAX_BATCH:
            raise InvalidRequest(f"at most {MAX_BATCH} messages per call")
        results = await asyncio.gather(*(self._send_one(m, caller) for m in request.messages))
        return sms_pb2.SendMessagesResponse(results=results)

    async def _send_one(
        self, request: sms_pb2.SendMessageRequest, caller: Caller
    ) -> sms_pb2.SendMessageResponse:
        try:
            return await self._send(request, caller)
        except GatewayError as exc:
            return sms_pb2.SendMessageResponse(
                success=False,
                error=exc.message,
                esme=request.esme,
                transaction_id=request.transaction_id,
            )

    async def _send(
        self, request: sms_pb2.SendMessageRequest, caller: Caller
    ) -> sms_pb2.SendMessageResponse:
        result = await self.messages.submit(
            caller.app_id,
            SendRequest(
                esme=request.esme,
                source=request.source,
                destination=request.destination,
                message=request.message,
                transaction_id=request.transaction_id,
                campaign=request.campaign,
            ),
            caller.ip,
        )
        return sms_pb2.SendMessageResponse(
            success=result.success,
            error=result.error,
            esme=result.esme,
            transaction_id=result.transaction_id,
            message_id=result.message_id,
            status=result.status,
            sms_ids=result.sms_ids,
            task_id=result.task_id,
        )

    async def sms_info(
        self, request: sms_pb2.SmsInfoRequest, caller: Caller
    ) -> sms_pb2.SmsInfoResponse:
        info = await self.messages.info(caller.app_id, request.esme, request.message_id, caller.ip)
        return sms_pb2.SmsInfoResponse(
            message_id=info.message_id,
            mode=info.mode,
            parts=info.parts,
            delivered_count=info.delivered_count,
            sent_at=info.sent_at,
            updated_at=info.updated_at,
            transaction_id=info.transaction_id,
            task_id=info.task_id,
            status=info.status,
            error=info.error,
        )

    async def check_esme(
        self, request: sms_pb2.CheckESMERequest, caller: Caller
    ) -> sms_pb2.CheckESMEResponse:
        check = self.messages.check_link(request.esme, caller.ip)
        return sms_pb2.CheckESMEResponse(
            persist=check.persist, system_id=check.system_id, error=check.error
        )
