"""https opened through the address that was checked: resolve once, check, connect there.

fsspec's HTTP filesystem (aiohttp) resolves a host name again when it connects, so a name
that answered a public address when it was checked can answer loopback when it is used (DNS
rebinding), and a redirect leads to an address nobody checked. Here a name is resolved once
per open, every address it resolved to is checked, the connection goes to a checked address
(TLS verified for the URL's host name, which is also the Host header and the SNI), and a
redirect is an error, never followed.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import CorpusError, Distw2vError

TIMEOUT_SECONDS = 60.0  # connect, and each read of the response

# The well-known NAT64 prefix carries an IPv4 address in its last 32 bits (6to4 in bits
# 16-48): the translator or relay delivers to that IPv4 address, so it is the one to check.
# Local-use NAT64 (RFC 8215) translates as the site chooses: refused whatever it embeds.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class SourceError(Distw2vError):
    """A source the policy refuses: outside the roots, a private address, a bucket..."""


class InvalidSource(CorpusError):
    """A source that is not a well-formed path or URL (a control character, a bad URL)."""


@dataclass(frozen=True)
class Target:
    """Where an https URL points: host name, port, and the request target (path?query)."""

    url: str
    host: str
    port: int
    target: str


def parse_https(url: str) -> Target:
    """Split an https URL, refusing anything two parsers could read differently."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:  # 'Invalid IPv6 URL', 'Port out of range 0-65535', ...
        raise InvalidSource(f"{url} is not a valid URL ({exc}).") from None
    if parts.scheme.lower() != "https":
        raise InvalidSource(f"{url} is not an https URL.")
    host = parts.hostname
    if not host:
        raise InvalidSource(f"{url} has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidSource(f"{url} carries a user name or password; this server does not send "
                     "credentials in URLs.")
    if "\\" in parts.netloc or "%" in host:
        raise InvalidSource(f"{url} has an invalid host name.")
    if _looks_numeric(host):
        # 0x7f000001, 2130706433, 127.1, 0177.0.0.1: inet_aton reads these as addresses,
        # ipaddress does not; accept only the one spelling both read the same.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise SourceError(f"{url} writes its IPv4 address in a non-standard form; use "
                               "dotted decimal.") from None
    try:
        host.encode("idna")
    except UnicodeError:
        raise InvalidSource(f"{url} has an invalid host name.") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, host, port, target)


def _looks_numeric(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return all(_NUMERIC_LABEL.fullmatch(label) for label in labels)


def is_public(address: Address) -> bool:
    """Whether connecting to `address` reaches the public internet and nothing else.

    Refuses private, loopback, link-local, multicast, reserved and unspecified addresses,
    and IPv6 forms that carry such an IPv4 address (IPv4-mapped, NAT64, 6to4; Teredo always).
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _LOCAL_NAT64:
            return False
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if address.teredo is not None:
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified)


def private_refusal(url: str) -> SourceError:
    return SourceError(f"{url} resolves to a loopback or private address; this server does "
                        "not read from those (see --allow-private-https).")


def resolve(target: Target, allow_private: bool) -> list[str]:
    """The addresses to connect to, each one checked; the name is resolved exactly once."""
    try:
        literal: Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):  # gaierror, or a name the resolver cannot take
            raise SourceError(f"the host {target.host} of {target.url} cannot be "
                               "resolved.") from None
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found:
        raise SourceError(f"the host {target.host} of {target.url} cannot be resolved.")
    if not allow_private:
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise private_refusal(target.url) from None
            if not is_public(address):
                raise private_refusal(target.url)
    return found


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection over a socket already connected to a checked address."""

    def __init__(self, target: Target, sock: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS, context=context)
        self._pinned: socket.socket | None = sock
        self._context = context

    def connect(self) -> None:
        if self._pinned is None:  # http.client reconnects only on reuse, which we never do
            raise ConnectionError("the pinned connection was already used")
        sock, self._pinned = self._pinned, None
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _Body(io.RawIOBase):
    """The response body; closing it closes the connection too."""

    def __init__(self, response: http.client.HTTPResponse, connection: _PinnedConnection):
        self._response = response
        self._connection = connection

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._response.read(None if size is None or size < 0 else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._connection.close()
        super().close()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return str(text).rstrip(".")


def open_https(url: str, *, allow_private: bool) -> io.RawIOBase:
    """GET `url` through a checked address and return the response, a binary stream.

    Raises SourceError for a refused address, CorpusError when the server cannot be
    reached or does not answer 200 (a redirect included: it is never followed).
    """
    target = parse_https(url)
    addresses = resolve(target, allow_private)
    sock: socket.socket | None = None
    failure: BaseException | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, target.port), timeout=TIMEOUT_SECONDS)
            break
        except OSError as exc:
            failure = exc
    if sock is None:
        raise CorpusError(f"cannot reach {url}: {_reason(failure or OSError())}.")
    connection = _PinnedConnection(target, sock, ssl.create_default_context())
    try:
        connection.request("GET", target.target, headers={
            "Accept-Encoding": "identity", "User-Agent": f"distw2v/{__version__}"})
        response = connection.getresponse()
    except ssl.SSLError as exc:
        connection.close()
        raise CorpusError(f"cannot read {url}: the TLS connection failed "
                          f"({_reason(exc)}).") from None
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise CorpusError(f"cannot reach {url}: {_reason(exc)}.") from None
    if response.status != 200:
        status = response.status
        connection.close()
        if 300 <= status < 400:
            raise CorpusError(f"{url} answered with a redirect (HTTP {status}); redirects "
                              "are not followed, name the final URL.")
        if status == 404:
            raise CorpusError(f"{url} does not exist.")
        raise CorpusError(f"{url} answered HTTP {status}; it cannot be read.")
    return _Body(response, connection)
