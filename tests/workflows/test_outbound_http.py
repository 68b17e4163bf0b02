"""The SSRF guard on outbound HTTP: IPv6 forms that carry an IPv4 address are judged by that address."""

import ipaddress

import pytest

from workflows import outbound_http

# The inside addresses a workflow author must not reach, each written in every IPv6 form that embeds
# an IPv4 address; the resolver answers a literal with itself, so no DNS is involved.
INSIDE = {"10.0.0.1": "0a00:0001", "127.0.0.1": "7f00:0001", "169.254.169.254": "a9fe:a9fe", "192.168.1.2": "c0a8:0102"}
PUBLIC = {"8.8.8.8": "0808:0808", "93.184.216.34": "5db8:d822"}


def embedded_forms(v4: str, hexed: str) -> list[str]:
    high, low = hexed.split(":")
    return [
        f"::ffff:{v4}",  # IPv4-mapped
        f"64:ff9b::{v4}",  # NAT64, well-known prefix
        f"2002:{high}:{low}::1",  # 6to4
        f"::{v4}",  # IPv4-compatible (deprecated, still routed by some stacks)
    ]


def teredo(v4: str) -> str:
    """A Teredo address (2001::/32) with a public server and ``v4`` as its (obfuscated) client."""
    client = int.from_bytes(bytes(int(part) for part in v4.split(".")), "big") ^ 0xFFFFFFFF
    return f"2001:0:4136:e378:8000:63bf:{client >> 16:x}:{client & 0xFFFF:x}"


@pytest.mark.parametrize(
    "address",
    [form for v4, hexed in INSIDE.items() for form in embedded_forms(v4, hexed)]
    + [teredo(v4) for v4 in INSIDE]
    + ["64:ff9b:1::a00:1", "64:ff9b:1::808:808"],  # the local-use NAT64 prefix is not globally reachable
)
def test_ipv6_forms_embedding_an_inside_ipv4_address_are_refused(address):
    with pytest.raises(outbound_http.BlockedURLError, match="private network"):
        outbound_http.resolve_public(f"http://[{address}]/")


@pytest.mark.parametrize("address", [form for v4, hexed in PUBLIC.items() for form in embedded_forms(v4, hexed)])
def test_ipv6_forms_embedding_a_public_ipv4_address_are_allowed(address):
    _host, checked, port = outbound_http.resolve_public(f"http://[{address}]:8080/")
    assert (ipaddress.ip_address(checked), port) == (ipaddress.ip_address(address), 8080)
