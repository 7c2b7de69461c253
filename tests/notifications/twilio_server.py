"""A local HTTP server shaped like Twilio's Programmable Messaging API, for the SMS tests.

It checks each request against the published API shape (POST
/2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic auth with that account, a
form-encoded body with To in E.164, From or MessagingServiceSid, Body) and answers like Twilio:
201 with a Message resource (sid "SM" + 32 hex), or Twilio's error JSON (`code`, `message`,
`more_info`, `status`). `fail_next(n, kind)` makes the next n valid requests fail on purpose.
Every request is recorded, valid or not.

It also plays Twilio's side of the callbacks: `report_status(sid, status)` posts a signed
status callback to the StatusCallback URL the message was sent with, `send_inbound(url, …)` a
signed inbound message, each signed as Twilio documents (its own implementation below, not the
backend's), so a test can drive the platform's callback endpoints end to end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")

# The failures `fail_next` can play: HTTP status, Twilio error code, message.
FAILURES = {
    "500": (500, 20500, "Internal Server Error"),
    "503": (503, 20503, "Service Unavailable"),
    "429": (429, 20429, "Too Many Requests"),
    "21211": (400, 21211, "The 'To' number is not a valid phone number."),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "21614": (400, 21614, "'To' number is not a valid mobile number"),
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]]
    client_port: int = 0  # the caller's TCP port: one port for several requests = keep-alive
    answered: int = 0  # the status code sent back (0 while the answer is delayed)
    sid: str = ""  # the message's sid when it was accepted

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.form)


@dataclass
class TwilioServer:
    account_sid: str
    auth_token: str
    host: str = "127.0.0.1"
    port: int = 0
    slow_seconds: float = 2.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, count: int, kind: str) -> None:
        """The next `count` well-formed requests fail: a key of FAILURES, or "slow" (the
        request is accepted but the answer comes after `slow_seconds`)."""
        if kind != "slow" and kind not in FAILURES:
            raise ValueError(kind)
        with self._lock:
            self._failures.extend([kind] * count)

    def _next_failure(self) -> str | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def message(self, sid: str) -> RecordedRequest:
        """The accepted request that created message `sid`."""
        with self._lock:
            for request in self.requests:
                if request.sid == sid:
                    return request
        raise KeyError(sid)

    def report_status(self, sid: str, status: str, *, error_code: str = "") -> httpx.Response:
        """POST Twilio's status callback for message `sid` to its StatusCallback URL."""
        sent = self.message(sid)
        fields = sent.fields
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": fields.get("From", "+15005550006"),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": fields["To"],
        }
        if error_code:
            params["ErrorCode"] = error_code
        return self.post_signed(fields["StatusCallback"], params)

    def send_inbound(self, url: str, *, from_number: str, to_number: str, body: str):
        """POST an inbound message ("A message comes in") to `url`."""
        sid = f"SM{uuid.uuid4().hex}"
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_number,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to_number,
        }
        return self.post_signed(url, params)

    def post_signed(self, url: str, params: dict[str, str]) -> httpx.Response:
        return httpx.post(
            url,
            data=params,
            headers={"X-Twilio-Signature": twilio_request_signature(self.auth_token, url, params)},
            timeout=10,
        )

    def start(self) -> TwilioServer:
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def twilio_request_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """As Twilio's "Webhooks security" guide says: the full URL, then each POST parameter's
    name and value sorted by name, HMAC-SHA1 keyed by the auth token, base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _handler_for(server: TwilioServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API (tests the pooled client)

        def log_message(self, format, *args):  # noqa: A002 - quiet test output
            return

        def do_GET(self):  # noqa: N802
            self._answer(405, _error(405, 20004, "Method not allowed"))

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            form = parse_qsl(raw, keep_blank_values=True)
            recorded = RecordedRequest(
                "POST", self.path, dict(self.headers.items()), form, self.client_address[1]
            )
            server._record(recorded)
            status, body = self._check(recorded)
            if status == 201:
                failure = server._next_failure()
                if failure == "slow":
                    time.sleep(server.slow_seconds)
                elif failure:
                    status, code, message = FAILURES[failure]
                    body = _error(status, code, message)
            recorded.answered = status
            if status == 201:
                recorded.sid = body["sid"]
            self._answer(status, body)

        def _check(self, recorded: RecordedRequest) -> tuple[int, dict]:
            match = PATH.match(recorded.path)
            if not match:
                return 404, _error(404, 20404, "The requested resource was not found")
            if not self._authorized(match["sid"]):
                return 401, _error(401, 20003, "Authenticate")
            if not self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return 400, _error(400, 21601, "Form-encoded body expected")
            fields = recorded.fields
            names = [name for name, _ in recorded.form]
            if any(names.count(name) > 1 for name in ("To", "From", "Body")):
                return 400, _error(400, 21601, "A parameter was sent twice")
            if not E164.match(fields.get("To", "")):
                return 400, _error(400, 21211, "The 'To' number is not a valid phone number.")
            if not fields.get("From") and not fields.get("MessagingServiceSid"):
                return 400, _error(400, 21603, "A 'From' phone number is required.")
            if not fields.get("Body"):
                return 400, _error(400, 21602, "Message body is required.")
            return 201, self._message(match["sid"], fields)

        def _authorized(self, sid: str) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user == sid == server.account_sid and password == server.auth_token

        def _message(self, account_sid: str, fields: dict[str, str]) -> dict:
            sid = f"SM{uuid.uuid4().hex}"
            now = formatdate(usegmt=True)
            return {
                "sid": sid,
                "account_sid": account_sid,
                "messaging_service_sid": fields.get("MessagingServiceSid"),
                "to": fields["To"],
                "from": fields.get("From"),
                "body": fields["Body"],
                # With a Messaging Service Twilio answers "accepted" until a sender is chosen.
                "status": "accepted" if fields.get("MessagingServiceSid") else "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "error_code": None,
                "error_message": None,
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            }

        def _answer(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout tests)

    return Handler
