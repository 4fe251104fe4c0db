"""The SSRF guard: may podscribe fetch this URL on a user's behalf?

:func:`check_url` parses the URL strictly, resolves the host (every A and AAAA answer) and
refuses when any answer is not globally routable. Strictness is the point: resolvers and
HTTP stacks accept spellings of addresses that plain string checks miss (``0x7f.1``,
``2130706433``, ``127.1``, ``0177.0.0.1``, trailing dots, ``%``-escapes, zone ids, unicode
dots), so the guard accepts only canonical dotted-quad IPv4, bracketed IPv6 and LDH host
names, and refuses everything else outright rather than trying to normalise it.

The decision carries the addresses it checked; :mod:`podscribe.egress.fetcher` connects to exactly
those, so a second DNS answer (rebinding) never reaches a socket.

``python -m podscribe.net_guard URL [URL ...]`` (:mod:`podscribe.net_guard`) prints the
verdicts; it resolves names and makes no other request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import idna

from podscribe.settings import FetchSettings

__all__ = [
    "GuardDecision",
    "Resolver",
    "check_spelling",
    "check_url",
    "non_global_reason",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAX_URL_LENGTH = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# WHATWG URL parsers read a host whose last label is numeric as an IPv4 address, in
# decimal, octal or hex; such hosts are refused unless they are canonical dotted quads.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$")
_UNICODE_DOTS = "\u3002\uff0e\uff61\u2024\ufe52"
_BLOCKED_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
_BLOCKED_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".intranet",
    ".lan",
    ".home.arpa",
    ".arpa",
    ".onion",
    ".test",
    ".invalid",
)

_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "'this network' / unspecified address"),
        ("10.0.0.0/8", "private address (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT address (RFC 6598)"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address (cloud metadata lives here)"),
        ("172.16.0.0/12", "private address (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation address (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112 anycast"),
        ("192.52.193.0/24", "AMT relay anycast"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
        ("192.168.0.0/16", "private address (RFC 1918)"),
        ("192.175.48.0/24", "AS112 anycast"),
        ("198.18.0.0/15", "benchmarking address (RFC 2544)"),
        ("198.51.100.0/24", "documentation address (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation address (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast address"),
        ("240.0.0.0/4", "reserved address (includes broadcast)"),
    )
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("100::/64", "discard-only address"),
        ("2001::/32", "Teredo address"),
        ("2001:2::/48", "benchmarking address"),
        ("2001:10::/28", "ORCHID address"),
        ("2001:20::/28", "ORCHIDv2 address"),
        ("2001:db8::/32", "documentation address"),
        ("3fff::/20", "documentation address"),
        ("5f00::/16", "segment-routing SID address"),
        ("fc00::/7", "unique local address (ULA)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address (deprecated)"),
        ("ff00::/8", "multicast address"),
    )
)
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


class Resolver(Protocol):
    """Answers a host name with IP address strings (every A and AAAA record)."""

    def __call__(self, host: str, port: int) -> list[str]: ...


@dataclass(frozen=True)
class GuardDecision:
    """The guard's verdict on one URL.

    Attributes:
        allowed: whether the URL may be fetched.
        url: the URL as it was checked.
        host: the host, lower-cased, without brackets ("" when unparseable).
        port: the port a connection would use (0 when unparseable).
        addresses: the addresses that were checked; a fetch connects only to these.
        reason: why the URL was refused; None when allowed.
    """

    allowed: bool
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]
    reason: str | None


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (A and AAAA).

    Args:
        host: a host name or IP literal.
        port: the port to be connected to (part of getaddrinfo's question).

    Returns:
        The distinct addresses, in the resolver's order; empty when the name does not resolve.
    """
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for family, _, _, _, sockaddr in answers:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


def non_global_reason(address: IPAddress) -> str | None:
    """Why an address is not globally routable, or None when it is.

    Embedded IPv4 (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64, 6to4) is judged
    by the IPv4 address it carries, as the network stack would route it.

    Args:
        address: the address to judge.

    Returns:
        A short reason, or None for a global unicast address.
    """
    if isinstance(address, ipaddress.IPv4Address):
        for network, why in _V4_RANGES:
            if address in network:
                return why
        return None if address.is_global else "not a globally routable address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        inner_reason = non_global_reason(inner)
        return f"{form} form of {inner} ({inner_reason})" if inner_reason else None
    for network6, why6 in _V6_RANGES:
        if address in network6:
            return why6
    return None if address.is_global else "not a globally routable address"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    packed = int(address)
    if address in _V4_MAPPED:
        return "IPv4-mapped", ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if address in _V4_TRANSLATED:
        return "IPv4-translated", ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return "6to4", ipaddress.IPv4Address((packed >> 80) & 0xFFFFFFFF)
    if address in _V4_COMPATIBLE and packed > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


class _Refused(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, reason: str, host: str = "", port: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.host, self.port = reason, host, port


def check_url(
    url: str, settings: FetchSettings, *, resolver: Resolver | None = None
) -> GuardDecision:
    """Decide whether ``url`` may be fetched on a user's behalf.

    Args:
        url: the URL exactly as received (a redirect's Location already made absolute).
        settings: supplies ``allowed_ports`` and, with ``env == "local"``, ``ssrf_allow``.
        resolver: name resolution; default :func:`system_resolver`. Tests inject fakes.

    Returns:
        The decision; when allowed, ``addresses`` are the checked addresses to connect to.
    """
    try:
        host, port, literal = _parse(url)
        allowed_pair = _escape_hatch(host, port, settings)
        if literal is not None:
            addresses = [literal]
        else:
            addresses = _resolve(host, port, resolver or system_resolver, allowed_pair)
        checked = tuple(_check_address(raw, host, port, allowed_pair) for raw in addresses)
        _check_port(host, port, settings, allowed_pair)
    except _Refused as refused:
        return GuardDecision(False, url, refused.host, refused.port, (), refused.reason)
    return GuardDecision(True, url, host, port, checked, None)


def check_spelling(url: str) -> str | None:
    """Check only how a URL is written (scheme, userinfo, host spelling, port syntax).

    The fetcher runs this on each raw ``Location`` before httpx normalises it, so an odd
    spelling is refused as written; :func:`check_url` still decides on the address.

    Args:
        url: an absolute URL.

    Returns:
        Why the spelling is refused, or None when it is acceptable.
    """
    try:
        _parse(url)
    except _Refused as refused:
        return refused.reason
    return None


def _parse(url: str) -> tuple[str, int, str | None]:
    """Split a URL into (host, port, IP literal or None), refusing odd spellings."""
    if not isinstance(url, str) or not url:
        raise _Refused("empty URL")
    if len(url) > _MAX_URL_LENGTH:
        raise _Refused("URL is too long")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" or ch == "\\" for ch in url):
        raise _Refused("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise _Refused(f"unparseable URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _Refused(f"scheme {scheme or '(none)'!r} is not http or https")
    if not url[len(parts.scheme) :].startswith("://"):
        raise _Refused("URL has no '//' authority")
    netloc = parts.netloc
    if "@" in netloc:
        raise _Refused("URL carries user information")
    host_text, port_text = _split_host_port(netloc)
    port = _parse_port(port_text, scheme)
    if host_text.startswith("["):
        return _parse_ipv6_literal(host_text, port)
    host = _parse_host_name(host_text, port)
    return host, port, (host if _CANONICAL_IPV4.match(host) else None)


def _split_host_port(netloc: str) -> tuple[str, str | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _Refused("unterminated IPv6 literal")
        rest = netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _Refused("garbage after IPv6 literal")
        return netloc[: end + 1], (rest[1:] if rest else None)
    host, sep, port = netloc.rpartition(":")
    return (host, port) if sep else (netloc, None)


def _parse_port(text: str | None, scheme: str) -> int:
    if text is None:
        return _DEFAULT_PORTS[scheme]
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise _Refused(f"invalid port {text!r}")
    return int(text)


def _parse_ipv6_literal(text: str, port: int) -> tuple[str, int, str]:
    inner = text[1:-1]
    if "%" in inner:
        raise _Refused("IPv6 zone identifiers are not allowed", inner.lower(), port)
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise _Refused(f"invalid IPv6 literal {inner!r}", inner.lower(), port) from None
    return str(address), port, str(address)


def _parse_host_name(text: str, port: int) -> str:
    host = text.lower()
    if not host:
        raise _Refused("URL has no host")
    if "%" in host:
        raise _Refused("percent-encoded host names are not allowed", host, port)
    if any(dot in host for dot in _UNICODE_DOTS):
        raise _Refused("host contains unicode dots", host, port)
    if not host.isascii():
        if unicodedata.normalize("NFKC", host) != host:
            raise _Refused("host is not in normalised form", host, port)
        try:
            host = idna.encode(host, strict=True).decode("ascii")
        except idna.IDNAError as error:
            raise _Refused(f"invalid internationalised host name ({error})", host, port) from None
    if host.endswith("."):
        raise _Refused("trailing dot in host name", host, port)
    labels = host.split(".")
    if _CANONICAL_IPV4.match(host):
        return host
    if _NUMERIC_LABEL.match(labels[-1]):
        raise _Refused("non-canonical IPv4 spelling (decimal, octal, hex or short)", host, port)
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _Refused("host is not a valid DNS name", host, port)
    return host


def _check_port(host: str, port: int, settings: FetchSettings, allowed_pair: bool) -> None:
    if not allowed_pair and port not in settings.allowed_ports:
        raise _Refused(f"port {port} is not allowed", host, port)


def _escape_hatch(host: str, port: int, settings: FetchSettings) -> bool:
    """Whether ``host:port`` is a loopback pair the local profile explicitly allows."""
    if settings.env != "local" or not settings.ssrf_allow:
        return False
    for pair in settings.ssrf_allow:
        allowed_host, _, allowed_port = pair.rpartition(":")
        if allowed_host.strip("[]").lower() == host and allowed_port == str(port):
            return True
    return False


def _resolve(host: str, port: int, resolver: Resolver, allowed_pair: bool) -> list[str]:
    # Internal names are refused before any DNS question, unless the local escape hatch
    # names the pair explicitly; _check_address then holds its answers to loopback.
    if allowed_pair:
        pass
    elif host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES):
        raise _Refused(f"host name {host!r} is reserved for internal use", host, port)
    elif "." not in host:
        raise _Refused("single-label host names resolve through search domains", host, port)
    try:
        answers = list(resolver(host, port))
    except Exception as error:  # noqa: BLE001 - any resolver failure means refuse
        raise _Refused(f"host does not resolve ({type(error).__name__})", host, port) from None
    if not answers:
        raise _Refused("host does not resolve", host, port)
    return answers


def _check_address(raw: str, host: str, port: int, allowed_pair: bool) -> str:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise _Refused(f"resolver answered a non-address {raw!r}", host, port) from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise _Refused(f"resolver answered a scoped address {raw!r}", host, port)
    if allowed_pair:
        if not address.is_loopback:
            raise _Refused(
                f"{address} is not loopback (PODSCRIBE_SSRF_ALLOW admits loopback only)",
                host,
                port,
            )
        return str(address)
    reason = non_global_reason(address)
    if reason is not None:
        raise _Refused(f"{address}: {reason}", host, port)
    return str(address)
