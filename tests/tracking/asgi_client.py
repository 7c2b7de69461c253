"""Requests to the real ASGI application (control_tower/asgi.py), which answers the device
protocol paths itself (tracking/ingest/fast.py) before Django.

The fast path writes through its own connection pool, so tests that use this need
`django_db(transaction=True)`: rows of the test's transaction would be invisible to it."""

from __future__ import annotations

import asyncio

import httpx

from control_tower.asgi import application
from tracking.ingest import fast


def run(*calls) -> list[httpx.Response]:
    """Send requests through the ASGI app on one fresh event loop; returns the responses."""

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return [await call(client) for call in calls]
        finally:
            await fast.close_pools()

    return asyncio.run(main())


class AsgiClient:
    """A synchronous stand-in for Django's test `Client`, for the device protocol paths:
    `get(path, params)`, `post(path, data, content_type=..., HTTP_AUTHORIZATION=...)`."""

    def get(self, path: str, params: dict | None = None) -> httpx.Response:
        return run(lambda c: c.get(path, params=params or {}))[0]

    def post(
        self,
        path: str,
        data=None,
        content_type: str = "application/x-www-form-urlencoded",
        **extra,
    ) -> httpx.Response:
        headers = {"content-type": content_type}
        if "HTTP_AUTHORIZATION" in extra:
            headers["authorization"] = extra["HTTP_AUTHORIZATION"]
        if isinstance(data, dict):
            return run(lambda c: c.post(path, data=data, headers=headers))[0]
        content = data.encode() if isinstance(data, str) else (data or b"")
        return run(lambda c: c.post(path, content=content, headers=headers))[0]
