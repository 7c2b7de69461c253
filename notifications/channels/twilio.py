"""SMS through Twilio's Programmable Messaging API (no SDK: one form POST over a pooled httpx
client). docs/NOTIFICATION_CHANNELS.md ("Twilio").

    POST {TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Messages.json
    To, From | MessagingServiceSid, Body, StatusCallback   (form-encoded, HTTP Basic auth)
    → 201 {"sid": "SM…", "status": "queued", …}
    → 4xx/5xx {"code": 21211, "message": "…", "more_info": "…", "status": 400}

Twilio's Messages API takes no idempotency key: a request whose answer was lost may have sent
the message. Such a failure is a `TemporaryChannelError` with `code="ambiguous"` so the caller
can choose between a possible duplicate and a possible loss. The key travels in the status
callback URL (`?key=…`), so delivery reports name the notification either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from django.conf import settings

from notifications.channels.base import (
    InboundSms,
    OutgoingSms,
    PermanentChannelError,
    SendResult,
    StatusReport,
    TemporaryChannelError,
)

DEFAULT_API_BASE = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
# The query parameter of the status callback URL that carries the idempotency key.
CALLBACK_KEY_PARAM = "key"

# Twilio's MessageStatus values (Message resource, "status"), normalized for StatusReport.
_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",  # WhatsApp/RCS read receipts: delivered, and then some
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
# Twilio error codes that a later attempt may get past (the rest of the 4xx are final).
_TEMPORARY_CODES = frozenset({20429})  # "Too many requests"


def twilio_signature(auth_token: str, url: str, params) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(auth token, url + each POST parameter's
    name and value, sorted by name)). `params` is a mapping or a list of (name, value) pairs;
    a name sent twice contributes each value, in order (Twilio sorts by name, then value)."""
    pairs = params.items() if hasattr(params, "items") else params
    payload = url + "".join(f"{name}{value}" for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def callback_url_with_key(url: str, idempotency_key: str) -> str:
    """The status callback URL carrying the key (unchanged if it already names it)."""
    if not url or not idempotency_key or idempotency_key in url:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.append((CALLBACK_KEY_PARAM, idempotency_key))
    return urlunsplit(parts._replace(query=urlencode(query)))


class TwilioSmsBackend:
    """Settings (read at each send, so a changed setting needs no restart): TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID, TWILIO_API_BASE,
    TWILIO_TIMEOUT_S (read timeout, default 10)."""

    name = "twilio"

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # -- sending -------------------------------------------------------------------------

    def send(self, message: OutgoingSms) -> SendResult:
        account_sid, auth_token = _credentials()
        base = getattr(settings, "TWILIO_API_BASE", DEFAULT_API_BASE).rstrip("/")
        read_timeout = float(getattr(settings, "TWILIO_TIMEOUT_S", 10))
        url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json"
        try:
            response = self._http().post(
                url,
                data=self._form(message),
                auth=(account_sid, auth_token),
                timeout=httpx.Timeout(read_timeout, connect=5.0),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached Twilio: retrying cannot duplicate the message.
            raise TemporaryChannelError(f"Twilio unreachable: {exc!r}", code="connection") from exc
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise TemporaryChannelError(
                "Twilio did not answer after the request was sent: the message may or may "
                f"not have been accepted ({exc!r}).",
                code="ambiguous",
            ) from exc
        except httpx.HTTPError as exc:
            raise TemporaryChannelError(f"Twilio request failed: {exc!r}", code="http") from exc
        if response.status_code in (200, 201):
            data = _json(response)
            sid = str(data.get("sid", ""))
            if not sid:
                raise TemporaryChannelError("Twilio accepted the request without a sid.")
            return SendResult(provider=self.name, provider_message_id=sid, status="sent")
        raise _classify_error(response)

    def _form(self, message: OutgoingSms) -> dict[str, str]:
        form = {"To": message.to, "Body": message.body}
        service = getattr(settings, "TWILIO_MESSAGING_SERVICE_SID", "")
        # An explicit sender wins; else the Messaging Service picks one from its pool.
        if message.sender:
            form["From"] = message.sender
        elif service:
            form["MessagingServiceSid"] = service
        elif getattr(settings, "TWILIO_FROM", ""):
            form["From"] = settings.TWILIO_FROM
        else:
            raise PermanentChannelError(
                "Twilio has no sender: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID.",
                code="configuration",
            )
        callback = callback_url_with_key(message.status_callback_url, message.idempotency_key)
        if callback:
            form["StatusCallback"] = callback
        return form

    def _http(self) -> httpx.Client:
        """One pooled client per backend (connections kept alive between sends)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = httpx.Client(
                        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                        follow_redirects=False,
                        headers={"User-Agent": "control-tower-notifications"},
                    )
        return self._client

    def close(self) -> None:
        """Close the pooled connections (tests, shutdown); the next send opens new ones."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- callbacks -----------------------------------------------------------------------

    def verify_request(self, request) -> bool:
        """Whether `X-Twilio-Signature` signs this request with our auth token. Twilio signs
        the URL it called; behind a proxy that is PUBLIC_BASE_URL + path, so both the URL the
        request names and that one are tried (each with and without an explicit port)."""
        given = request.headers.get(SIGNATURE_HEADER, "")
        token = getattr(settings, "TWILIO_AUTH_TOKEN", "")
        if not given or not token:
            return False
        params = [(k, v) for k in request.POST for v in request.POST.getlist(k)]
        return any(
            hmac.compare_digest(twilio_signature(token, url, params), given)
            for url in _candidate_urls(request)
        )

    def parse_status(self, request) -> StatusReport:
        data = request.POST
        twilio_status = data.get("MessageStatus") or data.get("SmsStatus") or ""
        status = _STATUS.get(twilio_status.lower(), "sent")
        error_code = data.get("ErrorCode", "")
        detail = twilio_status
        if error_code:
            detail = f"{twilio_status} (Twilio error {error_code})"
        return StatusReport(
            provider_message_id=data.get("MessageSid") or data.get("SmsSid") or "",
            status=status,
            idempotency_key=request.GET.get(CALLBACK_KEY_PARAM, ""),
            error_code=error_code,
            detail=detail,
        )

    def parse_inbound(self, request) -> InboundSms:
        data = request.POST
        return InboundSms(
            from_number=data.get("From", ""),
            to_number=data.get("To", ""),
            body=data.get("Body", ""),
        )


def _credentials() -> tuple[str, str]:
    account_sid = getattr(settings, "TWILIO_ACCOUNT_SID", "")
    auth_token = getattr(settings, "TWILIO_AUTH_TOKEN", "")
    if not account_sid or not auth_token:
        raise PermanentChannelError(
            "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
            code="configuration",
        )
    return account_sid, auth_token


def _json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _classify_error(response: httpx.Response) -> Exception:
    """Twilio's error body (`code`, `message`, `more_info`, `status`) → a ChannelError."""
    data = _json(response)
    status = response.status_code
    twilio_code = data.get("code")
    text = str(data.get("message") or response.text[:200] or response.reason_phrase)
    code = str(twilio_code) if twilio_code else str(status)
    detail = f"Twilio {status}: {text}"
    if data.get("more_info"):
        detail += f" ({data['more_info']})"
    if status == 429 or status >= 500 or twilio_code in _TEMPORARY_CODES:
        return TemporaryChannelError(detail, code=code)
    if status in (401, 403):
        return PermanentChannelError(
            "Twilio refused the credentials or the account "
            f"(check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN): {detail}",
            code=code,
        )
    return PermanentChannelError(detail, code=code)


def _candidate_urls(request) -> list[str]:
    path = request.get_full_path()
    urls = [request.build_absolute_uri(path)]
    public = getattr(settings, "PUBLIC_BASE_URL", "")
    if public:
        urls.append(f"{public.rstrip('/')}{path}")
    variants = []
    for url in urls:
        parts = urlsplit(url)
        default_port = {"https": 443, "http": 80}.get(parts.scheme)
        host = parts.hostname or ""
        variants.append(url)
        if parts.port is None and default_port:
            variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default_port}")))
        elif parts.port == default_port:
            variants.append(urlunsplit(parts._replace(netloc=host)))
    return list(dict.fromkeys(variants))
