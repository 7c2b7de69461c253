#!/usr/bin/env python3
"""Verify an exported chain of custody offline, without the control tower or Django.

    python scripts/verify_custody.py custody-REF.json [--expect-head HASH]

Get the file from `GET /api/v1/shipments/{id}/custody/export/`. Exit status 0: every link
matches (prints OK and the head hash); 1: a link is broken (prints its sequence, id and why);
2: the file cannot be read or is not a custody export.

The hashing below must stay identical to tracking/services/custody.py (a test checks that both
give the same hashes): each link's hash is `sha256(prev_hash_hex_ascii || canonical_json(content))`
with canonical JSON = UTF-8, keys sorted, separators (',', ':'), no ASCII escaping, and the
first link's prev_hash is 64 zeros.

A file whose links all match proves the chain was not altered *after* it was exported, only if
its head hash is the one the system reports: someone who rewrites every link recomputes every
hash. Compare the head with one obtained independently (`--expect-head`, e.g. the last `hash`
of `GET /api/v1/shipments/{id}/custody/` or an earlier export).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

CHAIN_FORMAT = "ct-custody-v1"
GENESIS_HASH = "0" * 64


# --- identical to tracking/services/custody.py -------------------------------------------


def canonical_json(content: dict) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, content: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(content)).hexdigest()


def first_broken(links: list[dict]) -> tuple[int | None, object, str] | None:
    """(sequence, id, reason) of the first broken link, or None when the chain holds. Same
    checks, in the same order, as `verify_links` in tracking/services/custody.py."""
    prev = GENESIS_HASH
    for position, link in enumerate(links, start=1):
        content = link["content"]
        problem = ""
        if content.get("sequence") != position:
            problem = f"expected sequence {position}, found {content.get('sequence')}"
        elif link["prev_hash"] != prev:
            problem = "prev_hash does not match the previous entry's hash"
        elif chain_hash(prev, content) != link["hash"]:
            problem = "content does not match its hash (the entry was altered)"
        if problem:
            return content.get("sequence"), link.get("id"), problem
        prev = link["hash"]
    return None


# ------------------------------------------------------------------------------------------


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if not isinstance(document, dict) or document.get("format") != CHAIN_FORMAT:
        raise ValueError(f"not a {CHAIN_FORMAT} custody export")
    links = document.get("links")
    if not isinstance(links, list) or not all(
        isinstance(link, dict)
        and isinstance(link.get("content"), dict)
        and isinstance(link.get("prev_hash"), str)
        and isinstance(link.get("hash"), str)
        for link in links
    ):
        raise ValueError("'links' must be a list of {content, prev_hash, hash}")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="a file from GET /api/v1/shipments/{id}/custody/export/")
    parser.add_argument("--expect-head", help="the last link's hash, obtained independently")
    args = parser.parse_args(argv)
    try:
        document = load(args.export)
    except (OSError, ValueError) as exc:
        print(f"ERROR: {args.export}: {exc}", file=sys.stderr)
        return 2
    links = document["links"]
    shipment = document.get("shipment") or {}
    name = shipment.get("reference") or shipment.get("id") or "?"
    broken = first_broken(links)
    if broken is not None:
        sequence, link_id, reason = broken
        print(f"BROKEN: shipment {name}: link sequence {sequence} (id {link_id}): {reason}")
        return 1
    head = links[-1]["hash"] if links else GENESIS_HASH
    if args.expect_head and args.expect_head != head:
        print(f"BROKEN: shipment {name}: head hash {head} is not the expected {args.expect_head}")
        return 1
    print(f"OK: shipment {name}: {len(links)} links, head {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
