"""`auth.Auth` over gRPC: the same AuthService calls as the REST auth routes."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from ...core.auth import AuthService
from ...core.ratelimit import LoginGuard
from .gen import auth_pb2
from .rpc import Access, Caller, Rpc


class AuthServicer:
    descriptor: ServiceDescriptor = auth_pb2.DESCRIPTOR.services_by_name["Auth"]

    def __init__(self, auth: AuthService, login_guard: LoginGuard) -> None:
        self.auth = auth
        self.login_guard = login_guard

    def rpcs(self) -> list[Rpc[Any, Any]]:
        pb = auth_pb2
        return [
            Rpc("Register", Access.ADMIN, pb.RegisterRequest, pb.RegisterResponse, self.register),
            Rpc("Login", Access.PUBLIC, pb.LoginRequest, pb.LoginResponse, self.login),
            Rpc("IsAdmin", Access.ADMIN, pb.IsAdminRequest, pb.IsAdminResponse, self.is_admin),
            Rpc(
                "DeleteUser",
                Access.ADMIN,
                pb.DeleteUserRequest,
                pb.DeleteUserResponse,
                self.delete_user,
            ),
        ]

    async def register(
        self, request: auth_pb2.RegisterRequest, caller: Caller
    ) -> auth_pb2.RegisterResponse:
        created = await self.auth.register(
            request.email, request.password, request.app_name or None
        )
        return auth_pb2.RegisterResponse(
            user_id=created.user_id,
            app_id=created.app_id,
            app_secret=created.app_secret,
            error="",
        )

    async def login(self, request: auth_pb2.LoginRequest, caller: Caller) -> auth_pb2.LoginResponse:
        # The same failed-login allowance per email and per address as REST's login.
        with self.login_guard.attempt(request.email, caller.ip, caller.scope):
            token = await self.auth.login(request.email, request.password, request.app_id)
        return auth_pb2.LoginResponse(token=token, error="")

    async def is_admin(
        self, request: auth_pb2.IsAdminRequest, caller: Caller
    ) -> auth_pb2.IsAdminResponse:
        return auth_pb2.IsAdminResponse(
            is_admin=await self.auth.is_admin(request.user_id), error=""
        )

    async def delete_user(
        self, request: auth_pb2.DeleteUserRequest, caller: Caller
    ) -> auth_pb2.DeleteUserResponse:
        return auth_pb2.DeleteUserResponse(
            result=await self.auth.delete_user(request.user_id), error=""
        )
