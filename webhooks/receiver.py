"""A small webhook receiver for tests, the demo and the benchmark: a threaded HTTP server that
verifies each request with the Standard Webhooks reference code (`standardwebhooks`), records
what it got, and can be told to misbehave (fail the next N requests, always fail, sleep,
redirect, answer with a large body).

    receiver = Receiver(secret="whsec_...").start()
    ... receiver.url ... receiver.received ...
    receiver.stop()

For load (bench/webhooks.py) the threaded server is too slow; `python -m webhooks.receiver
--port 8199 --secret whsec_... --out arrivals.txt` runs a bare asyncio sink in its own process:
it answers 204 at once, verifies one request in `--verify-every` and appends
`<event id> <unix time>` lines (and `verified`/`failed` lines for the sample) to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    message_id: str
    event_id: str | None
    event_type: str | None
    aggregate: str | None
    verified: bool
    headers: dict
    body: bytes
    at: float = field(default_factory=time.monotonic)
    answered: int = 0  # the status it was answered with


class _Server(ThreadingHTTPServer):
    # A batch opens dozens of connections at once: the default backlog (5) would drop some.
    request_queue_size = 512
    daemon_threads = True


class Receiver:
    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verify: bool = True,
        status: int = 204,
        on_receive=None,
    ) -> None:
        self.secrets = list(secrets or ([secret] if secret else []))
        self.verify = verify
        self.status = status
        self.on_receive = on_receive
        self.received: list[Received] = []
        self.requests = 0
        self.lock = threading.Lock()
        # Misbehaviour, changeable while running.
        self.fail_next = 0  # answer 500 to the next N requests
        self.fail_always = False
        self.fail_when = None  # predicate(Received) -> status to answer instead, or None
        self.sleep_s = 0.0
        self.redirect_to: str | None = None
        self.body = b""
        self._server = _Server((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accepted(self) -> list[Received]:
        """What was answered with a 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.received if r.answered // 100 == 2]

    def _verified(self, body: bytes, headers: dict) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def _answer(self, record: Received) -> int:
        with self.lock:
            self.requests += 1
            if self.fail_always:
                return 500
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500
        if self.fail_when is not None:
            status = self.fail_when(record)
            if status:
                return status
        return self.status

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    envelope = json.loads(body)
                except ValueError:
                    envelope = {}
                record = Received(
                    message_id=headers.get("webhook-id", ""),
                    event_id=envelope.get("id"),
                    event_type=envelope.get("type"),
                    aggregate=(
                        f"{envelope.get('aggregate_type')}:{envelope.get('aggregate_id')}"
                        if envelope
                        else None
                    ),
                    verified=receiver._verified(body, headers) if receiver.verify else True,
                    headers=headers,
                    body=body,
                )
                if receiver.sleep_s:
                    time.sleep(receiver.sleep_s)
                status = receiver._answer(record)
                if receiver.redirect_to:
                    status = 302
                record.answered = status
                with receiver.lock:
                    receiver.received.append(record)
                if receiver.on_receive is not None:
                    receiver.on_receive(record)
                self.send_response(status)
                if status == 302:
                    self.send_header("location", receiver.redirect_to)
                payload = receiver.body
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if payload:
                    # The sender may stop reading (it keeps at most 2 KB).
                    with contextlib.suppress(OSError):
                        self.wfile.write(payload)

        return Handler


# --- the benchmark's sink -----------------------------------------------------------------


class _SinkProtocol(asyncio.Protocol):
    def __init__(self, state) -> None:
        self.state = state
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            self.state.record(body, headers)


class _SinkState:
    def __init__(self, secret: str, out: str, verify_every: int) -> None:
        self.webhook = Webhook(secret)
        self.out = open(out, "a", buffering=1 << 16)  # noqa: SIM115 - flushed by the loop
        self.verify_every = verify_every
        self.count = 0
        self.failed = 0

    def record(self, body: bytes, headers: dict) -> None:
        self.count += 1
        if self.count % self.verify_every == 0:
            try:
                self.webhook.verify(body, headers)
                self.out.write("verified 0\n")
            except WebhookVerificationError:
                self.out.write("failed 0\n")
        try:
            event_id = json.loads(body).get("id")
        except (ValueError, AttributeError):
            event_id = None
        self.out.write(f"{event_id} {time.time():.6f}\n")


async def _sink_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--verify-every", type=int, default=50)
    args = parser.parse_args()
    state = _SinkState(args.secret, args.out, args.verify_every)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _SinkProtocol(state), "127.0.0.1", args.port, backlog=1024
    )
    async with server:
        while True:
            await asyncio.sleep(0.1)
            state.out.flush()


if __name__ == "__main__":
    asyncio.run(_sink_main())
