"""FastAPI dependencies: services, graphs and the authenticated user, as `Annotated` aliases."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langgraph.graph.state import CompiledStateGraph

from engine import Engine
from services.auth import Authenticator, AuthError, Principal
from services.container import Services
from services.users import User

_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_graphs(request: Request) -> dict[str, CompiledStateGraph]:
    return request.app.state.graphs


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


async def authenticate(request: Request, token: str | None) -> Principal:
    """The caller behind a bearer token (dev `dev:<id>`, loopback clients only, or a JWT); 401/403."""
    auth: Authenticator = request.app.state.auth
    # Dev tokens are not verified: whatever server runs the app, only loopback clients may use them.
    if get_services(request).settings.auth_mode == "dev":
        if request.client is not None and not _loopback(request.client.host):
            raise HTTPException(403, "dev auth serves loopback clients only")
    try:
        return await auth.authenticate(token)
    except AuthError as err:
        raise HTTPException(401, err.message, headers={"WWW-Authenticate": "Bearer"}) from err


async def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    principal = await authenticate(request, creds.credentials if creds else None)
    return await get_services(request).users.ensure(principal.subject)


async def current_user_or_query_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Query(description="Bearer token (EventSource cannot send headers)")] = None,
) -> User:
    principal = await authenticate(request, creds.credentials if creds else token)
    return await get_services(request).users.ensure(principal.subject)


async def admin_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Admin is a role claim in JWT mode and ADMIN_USER_IDS in dev mode."""
    principal = await authenticate(request, creds.credentials if creds else None)
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


Svc = Annotated[Services, Depends(get_services)]
AdminUser = Annotated[Principal, Depends(admin_user)]
Graphs = Annotated[dict[str, CompiledStateGraph], Depends(get_graphs)]
Runs = Annotated[Engine, Depends(get_engine)]
CurrentUser = Annotated[User, Depends(current_user)]
StreamUser = Annotated[User, Depends(current_user_or_query_token)]
