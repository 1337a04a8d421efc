"""Where a webhook may be sent: never to this machine or the private network behind it (SSRF).

A target URL is checked twice. When an endpoint is registered, its host is resolved and every
address it resolves to must be public, or the registration is refused with a message that says
why. Right before each delivery the host is resolved again and every address checked again,
and the request is then sent to the checked address itself (the URL's host kept in the ``Host``
header and as the TLS server name, so certificates are still verified against it): a name that
re-resolves to an internal address after registration (DNS rebinding) is refused, and no second
lookup happens between the check and the connection.

HTTPS is required and private targets are refused unless the development settings
``settings.webhooks.allow_http`` / ``allow_private_targets`` say otherwise (tests and the demo post
to a receiver on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from dropline.config import WebhookSettings
from dropline.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# Ranges that ``is_global`` alone lets through but that no webhook receiver lives in.
_NOT_PUBLIC = [ipaddress.ip_network(net) for net in (
    "100.64.0.0/10",   # carrier-grade NAT (shared address space)
    "192.0.0.0/24",    # IETF protocol assignments
    "198.18.0.0/15",   # benchmarking
    "64:ff9b:1::/48",  # local-use NAT64
)]


class UnsafeTarget(InvalidInput):
    slug = "unsafe-webhook-target"
    title = "Webhook target not allowed"


class UnresolvedTarget(UnsafeTarget):
    """The host does not resolve (now): a delivery is retried later, not given up."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified, shared and
    documentation ranges; an IPv4 address mapped into IPv6 (``::ffff:127.0.0.1``), or embedded
    by 6to4 / NAT64, is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return is_public_address(ipaddress.IPv4Address(address.packed[-4:]))
    if (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified
            or not address.is_global):
        return False
    return not any(address in net for net in _NOT_PUBLIC)


@dataclass(frozen=True)
class TargetPolicy:
    """What targets are allowed; the defaults are the production ones."""

    allow_http: bool = False
    allow_private: bool = False
    resolve: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def from_settings(cls, webhooks: WebhookSettings) -> TargetPolicy:
        return cls(allow_http=webhooks.allow_http,
                   allow_private=webhooks.allow_private_targets)


STRICT = TargetPolicy()


@dataclass(frozen=True)
class CheckedTarget:
    """A URL whose host resolved only to allowed addresses; ``address`` is the one to connect to."""

    url: str
    host: str
    port: int
    address: str | None  # None: the host did not resolve (only accepted at registration)

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL with the checked address as host, extra headers, httpx extensions), so the
        connection goes to the address that was checked and TLS still verifies ``host``."""
        parts = urlsplit(self.url)
        if self.address is None or _literal(self.host) is not None:
            return self.url, {}, {}
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        if parts.port is not None:
            netloc += f":{parts.port}"
        url = SplitResult(parts.scheme, netloc, parts.path, parts.query, "").geturl()
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return url, {"host": host_header}, extensions


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _parse(url: str, policy: TargetPolicy) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("webhook url is not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("webhook url must be an absolute http(s) URL", field="url")
    if parts.scheme == "http" and not policy.allow_http:
        raise UnsafeTarget("webhook url must use https", field="url")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("webhook url must not carry credentials", field="url")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_new_target(url: str, policy: TargetPolicy = STRICT) -> CheckedTarget:
    """For registration: refuses a URL whose host resolves to any internal address (or that is
    not https, unless allowed). A name that does not resolve yet is accepted: it cannot be
    reached until it does, and every delivery checks it again."""
    return _check(url, policy)


def check_delivery_target(url: str, policy: TargetPolicy = STRICT) -> CheckedTarget:
    """Right before sending: as ``check_new_target``, and the host must resolve now; the
    result names the checked address to connect to."""
    target = _check(url, policy)
    if target.address is None:
        raise UnresolvedTarget(f"webhook host {target.host!r} does not resolve", field="url")
    return target


def _check(url: str, policy: TargetPolicy) -> CheckedTarget:
    host, port = _parse(url, policy)
    literal = _literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(policy.resolve(host, port))
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            return CheckedTarget(url=url, host=host, port=port, address=None)
    if not policy.allow_private:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeTarget(
                    f"webhook host {host!r} resolves to {address}, an internal address "
                    "(loopback, private, link-local, multicast or reserved); give a public one",
                    field="url")
    return CheckedTarget(url=url, host=host, port=port, address=addresses[0])
