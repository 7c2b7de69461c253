"""Signing secrets: generated in the Standard Webhooks format, stored encrypted, used to sign.

Standard Webhooks signs with the raw secret (HMAC-SHA256 keyed by its bytes), so unlike API
keys it cannot be stored as a hash. It is stored as a Fernet token whose key is derived from
settings.SECRET_KEY (HKDF/SHA-256, salt "webhooks"): a database dump alone does not reveal it.
Changing SECRET_KEY makes the stored secrets unreadable: rotate every endpoint's secret then.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"webhooks", info=b"webhook-secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(raw: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(raw.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()


class Signer:
    """Signs messages with an endpoint's current secret and, during a rotation's overlap, its
    previous one too (two space-separated `v1,` signatures, as the specification allows)."""

    def __init__(self, raw_secrets: list[str]) -> None:
        self._webhooks = [Webhook(raw) for raw in raw_secrets]

    def signature(self, *, msg_id: str, timestamp: datetime, body: bytes) -> str:
        return " ".join(
            w.sign(msg_id=msg_id, timestamp=timestamp, data=body) for w in self._webhooks
        )


def signer_for(endpoint, *, now: datetime) -> Signer:
    raw = [decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_until is not None
        and endpoint.previous_secret_until > now
    ):
        raw.append(decrypt(endpoint.previous_secret_encrypted))
    return Signer(raw)
