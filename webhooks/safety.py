"""Where webhooks may go (SSRF rules, docs/WEBHOOKS.md "Safety").

Only http and https; no credentials in the URL. The host is resolved and refused when ANY of
its addresses is private, loopback, link-local, multicast, reserved or unspecified, unless the
organization's allow list names the host, the address or a network containing it. The sender
then connects to the address that was checked (webhooks/sender.py), so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from control_tower.errors import DomainError

SCHEMES = ("http", "https")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class RefusedDestination(Exception):
    """The destination may not be contacted; the message is what the delivery log shows."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as given


def parse_url(url: str) -> Target:
    """The parts of a subscription URL, or a DomainError naming the `url` field."""

    def invalid(message: str) -> DomainError:
        return DomainError(message, fields={"url": [message]}, code="validation_error")

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise invalid(f"Not a valid URL: {exc}.") from exc
    if parts.scheme.lower() not in SCHEMES:
        raise invalid("Only http and https URLs are allowed.")
    if not parts.hostname:
        raise invalid("The URL needs a host.")
    if parts.username is not None or parts.password is not None:
        raise invalid("Credentials in the URL are not allowed; authenticate with the signature.")
    if parts.fragment:
        raise invalid("A URL fragment is never sent; remove it.")
    scheme = parts.scheme.lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        scheme=scheme,
        host=parts.hostname.lower(),
        port=port or (443 if scheme == "https" else 80),
        path=path,
    )


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _allowed(host: str, address, allow_list: list[str]) -> bool:
    for entry in allow_list:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name that is not this one
    return False


def check_literal_destination(target: Target, allow_list: list[str]) -> None:
    """At subscription time: a URL whose host is a private literal address (or `localhost`)
    that the organization does not allow is refused with a 400 naming `url`. Host names are
    checked after resolution, at each delivery (DNS may change; `resolve`)."""
    host = target.host.strip("[]")
    if host == "localhost":
        address = ipaddress.ip_address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
    if _is_public(address) or _allowed(target.host, address, allow_list):
        return
    message = (
        f"{address} is a private address: add it to the organization's webhook allow list "
        "(webhook-settings) if this endpoint is meant to reach it."
    )
    raise DomainError(message, fields={"url": [message]}, code="validation_error")


def check_allow_list(entries: list[str]) -> list[str]:
    """The allow list cleaned, or a DomainError naming the bad entries."""
    cleaned, bad = [], []
    for entry in entries:
        entry = str(entry).strip().lower()
        if not entry:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not _HOST_NAME.fullmatch(entry):
                bad.append(entry)
                continue
        cleaned.append(entry)
    if bad:
        message = f"Not a host name, address or CIDR: {', '.join(bad)}."
        raise DomainError(
            message, fields={"allowed_private_hosts": [message]}, code="validation_error"
        )
    return sorted(set(cleaned))


def resolve(target: Target, allow_list: list[str]) -> str:
    """The address to connect to (the first the resolver gives). Raises RefusedDestination
    when the host does not resolve or any of its addresses is not allowed."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedDestination(f"dns: {target.host} does not resolve ({exc})") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RefusedDestination(f"dns: {target.host} has no address")
    for address in addresses:
        if not _is_public(address) and not _allowed(target.host, address, allow_list):
            raise RefusedDestination(f"refused: private address {address}")
    return str(addresses[0])
