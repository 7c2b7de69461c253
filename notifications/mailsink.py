"""The demo's mail sink: an SMTP server (aiosmtpd) that keeps every message it receives as an
.eml file in one folder, for the captured-mail viewer (/n/dev/mail/, notifications/mail_viewer.py)
and for anyone who opens the folder.

    .venv/bin/python manage.py mail_sink --port 1025 --dir var/mail

Files are written Maildir-style: into `<dir>/tmp/` first, then renamed into `<dir>/`, so a
reader never sees half a message. A file is named `<arrival time in ns, 20 digits>-<12 hex>.eml`:
names sort by arrival, and the viewer accepts no other name (nothing outside the folder can be
named). The envelope is kept as the first two headers (`Return-Path`, `X-Original-To`), as a
delivering mail server would, so a Bcc recipient is visible.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE_NAME = re.compile(r"^\d{20}-[0-9a-f]{12}\.eml$")


def store_message(directory: Path, content: bytes, *, mail_from: str, rcpt_tos: list[str]) -> Path:
    """Write one message atomically; returns its path."""
    directory = Path(directory)
    staging = directory / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{secrets.token_hex(6)}.eml"
    envelope = (
        f"Return-Path: <{_header_safe(mail_from)}>\r\n"
        f"X-Original-To: {_header_safe(', '.join(rcpt_tos))}\r\n"
    ).encode()
    temporary = staging / name
    with open(temporary, "wb") as handle:
        handle.write(envelope + content)
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / name
    os.replace(temporary, final)
    return final


def message_names(directory: Path) -> list[str]:
    """The stored messages' names, newest first (regular files of the sink's naming only)."""
    try:
        names = [
            entry.name
            for entry in os.scandir(directory)
            if MESSAGE_NAME.match(entry.name) and entry.is_file(follow_symlinks=False)
        ]
    except FileNotFoundError:
        return []
    return sorted(names, reverse=True)


def message_path(directory: Path, name: str) -> Path | None:
    """The file of a stored message, or None: the name must have the sink's form and the file
    must be a regular file directly inside `directory` (a symlink out of it is refused)."""
    if not MESSAGE_NAME.match(name):
        return None
    root = Path(directory).resolve()
    path = (root / name).resolve()
    if (root / name).is_symlink() or path.parent != root or not path.is_file():
        return None
    return path


class MailSinkHandler:
    """aiosmtpd handler: accept every recipient, store every message."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        store_message(
            self.directory,
            envelope.original_content or envelope.content,
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
        )
        return "250 Message accepted for delivery"


def start_sink(directory: Path, *, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the sink in a background thread; `.stop()` the returned controller to end it."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    controller = Controller(
        MailSinkHandler(directory),
        hostname=host,
        port=port,
        enable_SMTPUTF8=True,
        data_size_limit=25 * 1024 * 1024,
    )
    controller.start()
    return controller


def _header_safe(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")
