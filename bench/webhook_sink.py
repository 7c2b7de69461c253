"""A fast webhook sink for bench/webhooks.py, in its own process: an asyncio HTTP/1.1 server
that answers 204 at once, verifies one request in `--verify-every` with the reference
`standardwebhooks` code, and appends `<event id> <arrival unix time>` lines to a file.

    python bench/webhook_sink.py --port 8199 --secret whsec_... --out arrivals.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Sink(asyncio.Protocol):
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


class State:
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--verify-every", type=int, default=50)
    args = parser.parse_args()
    state = State(args.secret, args.out, args.verify_every)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Sink(state), "127.0.0.1", args.port, backlog=1024)
    async with server:
        while True:
            await asyncio.sleep(0.1)
            state.out.flush()


if __name__ == "__main__":
    asyncio.run(main())
