"""Reading the kernel's network counters: packets and bytes per interface, connection-tracking
entries, and the packet count of a NAT rule. Small readers with one job each; what a trial makes
of them is in bench.metrics.netpath.

Where each comes from, and in which network namespace:
- /sys/class/net/<if>/statistics: sysfs shows the namespace that mounted it (the host's), whatever
  namespace the reading thread is in; so host interfaces are read there.
- /proc/<pid>/net/dev: the namespace of that process (a private engine's own namespace).
- /proc/sys/net/netfilter/nf_conntrack_count and `iptables`: the namespace of the calling thread.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.metrics.kept_open import KeptOpen

COUNTER_NAMES = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")
SYS_CLASS_NET = Path("/sys/class/net")
CONNTRACK_COUNT = Path("/proc/sys/net/netfilter/nf_conntrack_count")


@dataclass(frozen=True)
class Counters:
    """One interface's cumulative counters (packets and bytes, received and sent)."""

    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int

    def as_dict(self) -> dict[str, int]:
        # not dataclasses.asdict: that deep-copies each field, ~15 times the cost, on every sampler tick
        return {"rx_packets": self.rx_packets, "tx_packets": self.tx_packets, "rx_bytes": self.rx_bytes,
                "tx_bytes": self.tx_bytes}

    def minus(self, earlier: "Counters") -> "Counters":
        """What the interface carried since `earlier` (counters only grow; a reset gives 0)."""
        return Counters(*(max(0, getattr(self, name) - getattr(earlier, name)) for name in COUNTER_NAMES))


def parse_net_dev(text: str) -> dict[str, Counters]:
    """Interfaces and their counters from the text of a /proc/net/dev file."""
    found = {}
    for line in text.splitlines()[2:]:  # two header lines
        name, _, numbers = line.partition(":")
        fields = numbers.split()
        if len(fields) < 16 or not all(field.isdigit() for field in fields):
            continue
        found[name.strip()] = Counters(rx_packets=int(fields[1]), tx_packets=int(fields[9]),
                                       rx_bytes=int(fields[0]), tx_bytes=int(fields[8]))
    return found


def read_net_dev(pid: int) -> dict[str, Counters]:
    """Every interface of process `pid`'s network namespace; {} when it is gone."""
    try:
        return parse_net_dev(Path(f"/proc/{pid}/net/dev").read_text())
    except OSError:
        return {}


def read_sysfs(interface: str, root: Path = SYS_CLASS_NET) -> Counters | None:
    """A host interface's counters from sysfs; None when it does not exist (a veth already gone)."""
    folder = f"{root}/{interface}/statistics/"
    try:
        return Counters(*(_read_int(folder + name) for name in COUNTER_NAMES))
    except (OSError, ValueError):
        return None


class SysfsFiles:
    """Host interfaces' counters from sysfs like `read_sysfs`, the files kept open between the
    sampler's ticks (bench.metrics.kept_open). An interface that cannot be read (not there yet, or
    removed since: a veth) reads as None and is looked up afresh next time."""

    def __init__(self, root: Path = SYS_CLASS_NET) -> None:
        self.root = root
        self._files = KeptOpen()

    def _paths(self, interface: str) -> list[str]:
        return [f"{self.root}/{interface}/statistics/{name}" for name in COUNTER_NAMES]

    def read(self, interface: str) -> Counters | None:
        paths = self._paths(interface)
        try:
            return Counters(*(int(self._files.read(path, 64)) for path in paths))
        except (OSError, ValueError):
            for path in paths:  # all four: a removed interface's other files would stay open
                self._files.forget(path)
            return None

    def close(self) -> None:
        self._files.close()


def _read_int(path: str) -> int:
    """The number in a small sysfs file; os.open and os.read, as the sampler reads these on every
    tick (~10 us a file, against ~20 us through pathlib's read_text)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return int(os.read(descriptor, 64))
    finally:
        os.close(descriptor)


def conntrack_entries(path: Path = CONNTRACK_COUNT) -> int | None:
    """Connection-tracking entries in the calling thread's namespace now; None without conntrack."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


_RULE = re.compile(r"^\s*(\d+)\s+(\d+)\s+DNAT\b.*\bdpt:(\d+)\b.*\bto:(\S+)")


def parse_dnat_packets(listing: str, port: int) -> int | None:
    """Packets counted by the DNAT rules for host port `port` in an `iptables -t nat -L -n -v -x`
    listing (summed: one rule per published address); None when no rule names that port."""
    counts = [int(match.group(1)) for match in map(_RULE.match, listing.splitlines())
              if match and int(match.group(3)) == port]
    return sum(counts) if counts else None


def dnat_packets(port: int, chain: str) -> tuple[int | None, str]:
    """(packets the DNAT rule for host port `port` in the nat table's `chain` (the engine's, which
    the setup's path names) has matched, how it was read) in the calling thread's namespace. Only a
    connection's first packet passes the nat table, so it counts new connections that were
    rewritten; (None, why) when there is no rule or it cannot be read."""
    iptables = shutil.which("iptables") or next((path for path in ("/usr/sbin/iptables", "/sbin/iptables")
                                                 if Path(path).exists()), None)
    if iptables is None:
        return None, "iptables is not installed"
    try:
        done = subprocess.run([iptables, "-w", "5", "-t", "nat", "-L", chain, "-n", "-v", "-x"], capture_output=True,
                              text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"iptables failed: {error}"
    if done.returncode != 0:
        return None, f"iptables: {' '.join(done.stderr.split())[:160] or 'exit ' + str(done.returncode)}"
    packets = parse_dnat_packets(done.stdout, port)
    return packets, f"iptables -t nat -L {chain}" if packets is not None else f"no DNAT rule for port {port} in {chain}"
