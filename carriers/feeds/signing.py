"""Optional webhook signatures per feed: the carrier signs the raw body with a shared secret
(base64 of HMAC-SHA256), in the header its adapter names (AfterShip: `aftership-hmac-sha256`,
https://www.aftership.com/docs/tracking/webhook/webhook-signature; the others:
`X-Carrier-Signature`). A defence in depth on top of the carrier-bound API key.

The secret is needed raw to compute the HMAC, so it is stored encrypted (Fernet, key derived
from SECRET_KEY with its own salt), never hashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

DEFAULT_HEADER = "X-Carrier-Signature"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"carrier-feeds", info=b"feed-secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(raw: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(raw.encode()).decode() if raw else ""


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode() if token else ""


def sign(secret: str, body: bytes) -> str:
    """What the carrier sends: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_matches(secret: str, body: bytes, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(sign(secret, body), sent.strip())
