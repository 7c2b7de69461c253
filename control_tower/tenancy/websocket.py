"""Websocket middleware: resolve the connecting person's organization and keep it in scope for
the whole connection."""

from __future__ import annotations

from channels.db import database_sync_to_async

from control_tower.errors import DomainError
from control_tower.tenancy.actors import actor_for_user
from control_tower.tenancy.scope import reset_scope, set_scope


@database_sync_to_async
def _resolve_actor(user, organization_slug):
    if user is None or not user.is_authenticated:
        return None
    try:
        return actor_for_user(user, organization_slug=organization_slug)
    except DomainError:
        return None


class OrganizationWebsocketMiddleware:
    """Needs `AuthMiddlewareStack` outside it. Sets `scope["actor"]` (None when the person has
    no organization: consumers then refuse the socket) and the organization scope, which the
    consumer's database calls inherit (asgiref copies the context into its threads)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        session = scope.get("session")
        slug = session.get("organization_slug") if session is not None else None
        actor = await _resolve_actor(scope.get("user"), slug)
        token = set_scope(actor.organization if actor else None)
        try:
            return await self.inner({**scope, "actor": actor}, receive, send)
        finally:
            reset_scope(token)
