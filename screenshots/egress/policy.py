"""Which network addresses a captured page may reach: a pure function of the address.

:class:`EgressPolicy` classifies a *resolved* IP address (never URL text) and answers with a
:class:`Decision` whose ``reason`` is written for the person reading the results file
(``"10.0.0.5 is private"``). By default only globally routable unicast addresses are allowed;
everything else is refused:

- IPv4: ``0.0.0.0/8`` (unspecified / "this network"), private ``10/8``, ``172.16/12``,
  ``192.168/16``, carrier-grade NAT ``100.64/10`` (also Alibaba's metadata service),
  loopback ``127/8``, link-local ``169.254/16`` (the cloud metadata services
  ``169.254.169.254`` and ``169.254.170.2``), IETF ``192.0.0/24``, documentation
  ``192.0.2/24``, ``198.51.100/24``, ``203.0.113/24``, benchmarking ``198.18/15``, the 6to4
  relay ``192.88.99/24``, multicast ``224/4``, reserved ``240/4`` and broadcast.
- IPv6: ``::`` and ``::1``; IPv4-mapped ``::ffff:0:0/96`` is unmapped and judged as the IPv4
  address it is; IPv4-compatible ``::/96``; NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``;
  discard ``100::/64``; Teredo ``2001::/32``; the IETF block ``2001::/23``; documentation
  ``2001:db8::/32`` and ``3fff::/20``; 6to4 ``2002::/16``; unique-local ``fc00::/7``
  (AWS's metadata service ``fd00:ec2::254``); link-local ``fe80::/10``; site-local
  ``fec0::/10``; multicast ``ff00::/8``; and anything outside global unicast ``2000::/3``.
- Anything Python's :attr:`ipaddress.IPv4Address.is_global` does not call global is refused
  too, as a last net (the explicit table above does not depend on the Python version).

An allow-list (``SCREENSHOT_EGRESS_ALLOW``, parsed by :func:`parse_allow_list`) exempts
addresses and networks; an IPv4-mapped address is exempt when the IPv4 address it maps is.
Nothing is exempt by default.

:func:`parse_ip_host` reads a URL host the way browsers do (WHATWG URL standard), so the
numeric spellings of an address (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``,
``[::ffff:127.0.0.1]``) are the addresses they stand for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Name of the setting listing exempt addresses, used in messages.
ALLOW_ENV = "SCREENSHOT_EGRESS_ALLOW"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: Single addresses worth naming in a message. Checked before :data:`_V4_CLASSES`.
_NAMED_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "link-local (the cloud metadata service)",
    ipaddress.ip_address("169.254.170.2"): "link-local (the container metadata service)",
    ipaddress.ip_address("100.100.100.200"): "carrier-grade NAT (a cloud metadata service)",
    ipaddress.ip_address("fd00:ec2::254"): "unique-local (the cloud metadata service)",
    ipaddress.ip_address("255.255.255.255"): "the broadcast address",
}

#: IPv4 networks refused by default, most specific first, with what they are.
_V4_CLASSES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified (this network)"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT (shared address space)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "reserved for documentation"),
    (_V4("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "reserved for benchmarking"),
    (_V4("198.51.100.0/24"), "reserved for documentation"),
    (_V4("203.0.113.0/24"), "reserved for documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

#: IPv6 networks refused by default (IPv4-mapped addresses are handled apart), with what they
#: are. Order matters: the first match names the address.
_V6_CLASSES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"),
    (_V6("64:ff9b::/96"), "NAT64"),
    (_V6("64:ff9b:1::/48"), "NAT64 (local use)"),
    (_V6("100::/64"), "reserved (discard only)"),
    (_V6("2001::/32"), "Teredo"),
    (_V6("2001:db8::/32"), "reserved for documentation"),
    (_V6("2001::/23"), "reserved (IETF protocol assignments)"),
    (_V6("2002::/16"), "6to4"),
    (_V6("3fff::/20"), "reserved for documentation"),
    (_V6("5f00::/16"), "reserved (segment routing)"),
    (_V6("fc00::/7"), "unique-local (private)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local (deprecated)"),
    (_V6("ff00::/8"), "multicast"),
)
_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one address."""

    #: The address judged (as resolved, before unmapping).
    address: IPAddress
    #: Whether a connection to it may be made.
    allowed: bool
    #: Why, for people: ``"10.0.0.5 is private"``, ``"93.184.215.14 is public"``.
    reason: str

    @property
    def connect_address(self) -> IPAddress:
        """The address to dial: an IPv4-mapped address is dialled as the IPv4 it maps."""
        if isinstance(self.address, ipaddress.IPv6Address) and self.address.ipv4_mapped:
            return self.address.ipv4_mapped
        return self.address


def classify(address: IPAddress) -> str | None:
    """What kind of non-public address this is (``"private"``), or ``None`` if it is public.

    IPv4-mapped IPv6 addresses are classified as the IPv4 address they map.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
        mapped = address.ipv4_mapped
        if mapped is not None:
            return classify(mapped)
    named = _NAMED_ADDRESSES.get(address)
    if named is not None:
        return named
    if isinstance(address, ipaddress.IPv4Address):
        for network, label in _V4_CLASSES:
            if address in network:
                return label
        return None if address.is_global else "reserved"
    for network6, label in _V6_CLASSES:
        if address in network6:
            return label
    if address not in _GLOBAL_UNICAST:
        return "reserved (not a global unicast address)"
    return None if address.is_global else "reserved"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 or 6to4 address leads to, for messages."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


class EgressPolicy:
    """Decides whether a browser may connect to an address. Immutable and thread-safe.

    ``allow`` lists the networks exempt from the default block (default: none).
    """

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(allow)

    def __repr__(self) -> str:
        return f"EgressPolicy(allow={[str(n) for n in self.allow]!r})"

    def _allowed_by_list(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.allow
        )

    def check(self, address: IPAddress | str) -> Decision:
        """Judge one address (an :mod:`ipaddress` object or its text)."""
        if isinstance(address, str):
            address = ipaddress.ip_address(address)
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
        if self._allowed_by_list(address):
            return Decision(address, True, f"{address} is allowed by {ALLOW_ENV}")
        label = classify(address)
        if label is None:
            return Decision(address, True, f"{address} is public")
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if mapped is not None:
            return Decision(address, False, f"{address} is IPv4-mapped {mapped}, which is {label}")
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            label += f", reaching {embedded}"
        return Decision(address, False, f"{address} is {label}")

    def check_all(self, addresses: Iterable[IPAddress]) -> list[Decision]:
        """Judge every address a name resolved to; the caller refuses if any is refused."""
        return [self.check(address) for address in addresses]


# -- configuration -------------------------------------------------------------------------


def parse_allow_list(text: str | None) -> tuple[IPNetwork, ...]:
    """Parse ``SCREENSHOT_EGRESS_ALLOW``: comma-separated addresses or CIDR networks.

    ``"127.0.0.1, 10.0.0.0/8, fd00::/8"`` gives three networks; an empty or missing value gives
    none. Raises :class:`ValueError` naming the bad entry (a typo, or a network with host bits
    set such as ``10.0.0.5/8``, which is refused rather than guessed).
    """
    networks: list[IPNetwork] = []
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=True))
        except ValueError as exc:
            if "host bits set" in str(exc):
                fixed = ipaddress.ip_network(item.strip("[]"), strict=False)
                raise ValueError(f"{item!r} has host bits set: did you mean {fixed}?") from None
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


# -- reading hosts like a browser ----------------------------------------------------------


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, ``0x`` hex or ``0`` octal; ``None`` if not."""
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, radix = part[1:], 8
    if part == "":
        return 0
    digits = {10: "0123456789", 16: "0123456789abcdefABCDEF", 8: "01234567"}[radix]
    if any(ch not in digits for ch in part):
        return None
    return int(part, radix)


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and all(ch.isdigit() and ch.isascii() for ch in last):
        return True
    return bool(last) and _ipv4_number(last) is not None


def parse_ip_host(host: str) -> IPAddress | None:
    """The IP address a URL host names, read as browsers do; ``None`` for a domain name.

    ``127.1``, ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` are ``127.0.0.1``; ``[::1]`` and
    ``::1`` are ``::1``. Raises :class:`ValueError` for a host that looks numeric but is not a
    valid address (``1.2.3.4.5``, ``256.1.1.1``), which browsers refuse as well.
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        return ipaddress.IPv6Address(text)
    if not text or not _ends_in_number(text):
        return None
    parts = text.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = []
    for part in parts:
        number = _ipv4_number(part) if part else None
        if number is None:
            raise ValueError(f"{host!r} is not a valid IPv4 address")
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)
