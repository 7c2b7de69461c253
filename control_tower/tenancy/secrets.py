"""Credentials shown once and stored hashed (API keys, device tokens).

A credential looks like `<kind>_<prefix>_<secret>`. The prefix is stored in clear and indexed so a
request finds its row in one query; the whole credential is stored as SHA-256. The secrets are 256
random bits, so a fast hash is enough (no password stretching needed), and comparison is
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX_LENGTH = 10


@dataclass(frozen=True)
class IssuedSecret:
    raw: str  # give to the user once; never stored
    prefix: str
    digest: str


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_secret(kind: str) -> IssuedSecret:
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    raw = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedSecret(raw=raw, prefix=prefix, digest=hash_secret(raw))


def split_prefix(raw: str, kind: str) -> str | None:
    """The prefix of a well-formed credential of `kind`, or None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != kind or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[1]


def secret_matches(raw: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(raw), digest)
