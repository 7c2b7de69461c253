"""A live server speaking ASGI: what serves requests in production (uvicorn), including the
device protocol paths (tracking/ingest/fast.py) and websockets, which pytest-django's WSGI
`live_server` does not have. tests/conftest.py makes the fixture available everywhere."""

from __future__ import annotations

import pytest


class AsgiLiveServer:
    """The ASGI application served by uvicorn in a thread of the test process (see
    `asgi_live_server`); `url` like pytest-django's live_server."""

    def __init__(self, url: str):
        self.url = url

    def __str__(self) -> str:
        return self.url


@pytest.fixture
def asgi_live_server(transactional_db):
    """`control_tower.asgi:application` (HTTP + websockets) served by uvicorn on a free port,
    in a background thread of this process: pytest-django's `live_server` speaks WSGI only, so
    it has no websockets. Same process, same settings, so the same test database (tests must be
    `django_db(transaction=True)`: the server's threads only see committed rows) and the same
    Redis database and channel prefix. The websocket Origin check (AllowedHostsOriginValidator)
    accepts http://127.0.0.1:<port> because 127.0.0.1 is in ALLOWED_HOSTS (asserted here, so a
    settings change fails loudly instead of as a refused socket).

    Uvicorn's signal handlers are only installed from the main thread, so running it in a thread
    is supported; it is stopped (should_exit) and joined at teardown."""
    import socket
    import threading
    import time

    import uvicorn
    from django.conf import settings
    from django.db import connections

    from control_tower.asgi import application

    assert "127.0.0.1" in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application,
        lifespan="off",
        log_level="warning",
        ws="websockets",
        ws_ping_interval=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="asgi-live-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield AsgiLiveServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        # Connections the server's worker threads opened are closed with their requests
        # (CONN_MAX_AGE=0); this covers this thread's own before the flush.
        connections.close_all()
