"""Small network helpers shared by setups and the load generator."""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK = "127.0.0.1"


def free_port(address: str = LOOPBACK) -> int:
    """A TCP port on `address` (127.0.0.1 unless a split run says otherwise) that nothing listens on
    right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def port_in_use(port: int, address: str = LOOPBACK) -> bool:
    """True when something on `address` accepts connections on port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 (and ::1): the only addresses a run listens on unless it is split."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def source_address_toward(peer: str) -> str:
    """This machine's address on the route to `peer` (an IPv4 address): the one `peer` reaches it at.

    A UDP connect sends nothing; it only asks the kernel which source address it would use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((peer, 9))
        return probe.getsockname()[0]
