"""The development SMS backend: writes each message to the log (and, when
`NOTIFICATIONS_SMS_FILE` is set, appends it as one JSON line to that file) and reports it
delivered at once. Its callbacks are JSON bodies authenticated by the
`X-Console-Sms-Secret` header (`NOTIFICATIONS_SMS_CONSOLE_SECRET`), so the status and inbound
endpoints can be exercised without a provider."""

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

logger = logging.getLogger(__name__)
_write_lock = threading.Lock()


class ConsoleSmsBackend:
    name = "console"

    def send(self, message: OutgoingSms) -> SendResult:
        provider_id = f"console-{uuid.uuid4().hex[:16]}"
        record = {
            "id": provider_id,
            "at": timezone.now().isoformat(),
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "idempotency_key": message.idempotency_key,
        }
        logger.info("SMS to %s: %s", message.to, message.body)
        path = getattr(settings, "NOTIFICATIONS_SMS_FILE", "")
        if path:
            with _write_lock:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return SendResult(provider=self.name, provider_message_id=provider_id, status="delivered")

    def verify_request(self, request) -> bool:
        secret = getattr(settings, "NOTIFICATIONS_SMS_CONSOLE_SECRET", "")
        given = request.headers.get("X-Console-Sms-Secret", "")
        return bool(secret) and hmac.compare_digest(given, secret)

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
