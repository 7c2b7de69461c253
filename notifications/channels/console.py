"""The development SMS backends: no provider, no cost, nothing leaves the machine.

- `ConsoleSmsBackend` writes each message to the log (and, when `NOTIFICATIONS_SMS_FILE` is
  set, appends it as one JSON line to that file);
- `FileSmsBackend` is the same backend that always keeps the file (`NOTIFICATIONS_SMS_FILE`,
  by default var/sms/outbox.jsonl): the documented development path, the one `make demo` uses.

Both report each message delivered at once. Their callbacks are JSON bodies authenticated by
the `X-Console-Sms-Secret` header (`NOTIFICATIONS_SMS_CONSOLE_SECRET`), so the status and
inbound endpoints can be exercised without a provider:

    status:  {"id": "console-…", "status": "delivered", "idempotency_key": "…",
              "error_code": "", "detail": ""}
    inbound: {"from": "+56961234567", "to": "+56229990000", "body": "STOP"}
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from notifications.channels.base import InboundSms, OutgoingSms, SendResult, StatusReport
from notifications.segments import sms_length

logger = logging.getLogger(__name__)
_write_lock = threading.Lock()
SECRET_HEADER = "X-Console-Sms-Secret"
DEFAULT_FILE = Path("var") / "sms" / "outbox.jsonl"  # under BASE_DIR


class ConsoleSmsBackend:
    name = "console"

    def send(self, message: OutgoingSms) -> SendResult:
        provider_id = f"console-{uuid.uuid4().hex[:16]}"
        length = sms_length(message.body)
        record = {
            "id": provider_id,
            "at": timezone.now().isoformat(),
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "idempotency_key": message.idempotency_key,
            "status_callback_url": message.status_callback_url,
            "encoding": length.encoding,
            "segments": length.segments,
        }
        logger.info("SMS to %s (%s segment(s)): %s", message.to, length.segments, message.body)
        path = self.file_path()
        if path is not None:
            append_json_line(path, record)
        return SendResult(provider=self.name, provider_message_id=provider_id, status="delivered")

    def file_path(self) -> Path | None:
        configured = getattr(settings, "NOTIFICATIONS_SMS_FILE", "")
        return Path(configured) if configured else None

    def verify_request(self, request) -> bool:
        secret = getattr(settings, "NOTIFICATIONS_SMS_CONSOLE_SECRET", "")
        given = request.headers.get(SECRET_HEADER, "")
        return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())

    def parse_status(self, request) -> StatusReport:
        data = json.loads(request.body)
        return StatusReport(
            provider_message_id=str(data.get("id", "")),
            status=str(data["status"]),
            idempotency_key=str(data.get("idempotency_key", "")),
            error_code=str(data.get("error_code", "")),
            detail=str(data.get("detail", "")),
        )

    def parse_inbound(self, request) -> InboundSms:
        data = json.loads(request.body)
        return InboundSms(from_number=data["from"], to_number=data.get("to", ""), body=data["body"])


class FileSmsBackend(ConsoleSmsBackend):
    """The console backend with its file always on (same name, callbacks and format)."""

    def file_path(self) -> Path:
        path = super().file_path()
        return path if path is not None else Path(settings.BASE_DIR) / DEFAULT_FILE


def append_json_line(path: Path, record: dict) -> None:
    """One message, one line, written whole: threads of one process take a lock; processes
    (several workers) rely on O_APPEND writes of a single short line not interleaving."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with _write_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            handle.write(line)


def read_sms_file(path: Path | str) -> list[dict]:
    """The messages a console/file backend wrote, oldest first (tests, the demo's README)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
