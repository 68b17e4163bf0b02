"""Outbound HTTP for user-configured URLs (webhook and HTTP request actions), with an SSRF guard.

A workflow author picks the URL, so the request must not reach our own network: the host is
resolved once, every address it resolves to must be public (not loopback, private, link-local —
which covers cloud metadata at 169.254.169.254 — multicast or reserved; an IPv6 address that
carries an IPv4 one — IPv4-mapped, NAT64, 6to4, Teredo — is judged by that one too), and the connection goes
to that checked address (the Host header and TLS SNI keep the name), so a DNS answer that
changes between the check and the call (rebinding) cannot redirect it. Redirects are not
followed. ``OUTBOUND_HTTP_ALLOWED_HOSTS`` lists hosts exempt from the address check (a
loopback test server, an internal service an operator trusts).

Bodies are signed with HMAC-SHA256 (``X-Signature: t=<unix time>,v1=<hex>`` over
``"<t>.<body>"``) so the receiver can verify them, and carry the step's idempotency key as
``Idempotency-Key`` so a receiver can drop a repeat (docs/workflows.md).
"""

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_RESPONSE_BYTES = 64 * 1024


class BlockedURLError(ValueError):
    """The URL is not allowed (scheme, or an address inside our network)."""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be called, without resolving it (for validation at save), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "Use an http:// or https:// URL."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "Put credentials in headers, not in the URL."
    return None


def allowed_host(host: str, port: int) -> bool:
    """Whether an operator allowed ``host`` (or ``host:port``) in ``OUTBOUND_HTTP_ALLOWED_HOSTS``."""
    allowed = getattr(settings, "OUTBOUND_HTTP_ALLOWED_HOSTS", [])
    return host in allowed or f"{host}:{port}" in allowed


def resolve_public(url: str) -> tuple[str, str, int]:
    """(host, checked address, port) for ``url``; raises BlockedURLError when it points inside."""
    problem = url_problem(url)
    if problem:
        raise BlockedURLError(problem)
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedURLError(f"{host} does not resolve: {exc}") from exc
    addresses = [info[4][0] for info in infos]
    if not allowed_host(host, port):
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not address_public(ip):
                raise BlockedURLError(f"{host} resolves to {ip}, an address inside a private network.")
    return host, addresses[0], port


def address_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is globally reachable, judging an IPv6 address that carries an IPv4 one by
    that IPv4 address too: a NAT64 gateway, a 6to4 relay or the host's own dual stack would
    deliver ``64:ff9b::10.0.0.1`` to 10.0.0.1, which ``is_global`` alone does not see."""
    if not ip.is_global or ip.is_multicast:
        return False
    if ip.version == 4:
        return True
    if ip in NAT64_LOCAL_USE:
        # Operators choose the embedding inside this prefix, so the IPv4 address cannot be read
        # reliably; IANA lists the prefix as not globally reachable anyway.
        return False
    return all(address_public(inner) for inner in embedded_ipv4(ip))


NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped, IPv4-compatible, NAT64 (well-known
    prefix), 6to4, and a Teredo address's server and client."""
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def signature(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Signature`` header value for ``body``: ``t=<unix>,v1=<hmac-sha256 hex>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_valid(secret: str, body: bytes, header: str, *, window_s: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is within the replay window."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > window_s:
        return False
    expected = signature(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def request(
    method: str,
    url: str,
    *,
    body: dict | None,
    headers: dict[str, str],
    idempotency_key: str,
    secret: str = "",
    content: bytes | None = None,
    timeout: httpx.Timeout = TIMEOUT,
) -> httpx.Response:
    """Makes one request to a checked public address; raises BlockedURLError or httpx errors.
    ``body`` is sent as JSON; ``content`` (with ``body=None``) as raw bytes, e.g. an encrypted
    web-push payload. ``idempotency_key`` "" sends no ``Idempotency-Key`` header."""
    host, address, port = resolve_public(url)
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    if body is not None:
        content = json.dumps(body, separators=(",", ":")).encode()
    headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "marketing-automation/1"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    content = content or b""
    if body is not None:
        headers["Content-Type"] = "application/json"
    if secret:
        headers["X-Signature"] = signature(secret, content)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        response = client.request(method, pinned, content=content, headers=headers, extensions=extensions)
        response.read()
    return response
