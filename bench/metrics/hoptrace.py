"""Optional eBPF tracing of the hops (bpftrace, from Debian's packages): packets per device of the
app's own connections only, as a cross-check of the interface counters, which count everything.

Two tracepoints see every packet a device sends (net:net_dev_start_xmit) and receives
(net:netif_receive_skb); the program keeps those of TCP segments to or from the app's endpoints
(its port on 127.0.0.1, the container's IP and port), keyed by network namespace, device and
direction, and prints the running counts with the monotonic clock every 100 ms. The rows are then
read like the counters: interpolated at the measured window's bounds, per request. Only packets are
compared: a device's byte counters include its link-layer header on one side and not the other.

It runs only where it can: as root, with bpftrace installed, the kernel's BTF and tracefs mounted;
`unavailable_reason()` says what is missing. The figures a run stores are the counters' either way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

TRACEFS = (Path("/sys/kernel/tracing/events/net"), Path("/sys/kernel/debug/tracing/events/net"))
TICK_MS = 100
START_DEADLINE_S = 30.0
_LINE = re.compile(r"^@p\[(\d+), (\S+), ([01])\]: (\d+)$")

_MATCH = """  $skb = (struct sk_buff *)args->skbaddr;
  $ip = (struct iphdr *)({data});
  if ($ip->protocol == 6) {{
    $tcp = (struct tcphdr *)((uint8 *)$ip + $ip->ihl * 4);
    $s = (($tcp->source & 0xff) << 8) | ($tcp->source >> 8);
    $d = (($tcp->dest & 0xff) << 8) | ($tcp->dest >> 8);
    if ({condition}) {{
      @p[$skb->dev->nd_net.net->ns.inum, str(args->name), {direction}] = count();
    }}
  }}"""


def unavailable_reason() -> str | None:
    """Why hops cannot be traced here, or None."""
    if os.geteuid() != 0:
        return "tracing hops with eBPF needs root"
    if shutil.which("bpftrace") is None:
        return "bpftrace is not installed (apt-get install bpftrace)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "this kernel has no BTF (/sys/kernel/btf/vmlinux)"
    if not any(folder.is_dir() for folder in TRACEFS):
        return "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"
    return None


def _address_number(address: str) -> int:
    """An IPv4 address as the kernel's __be32 reads on this little-endian machine."""
    return int.from_bytes(bytes(int(part) for part in address.split(".")), "little")


def program(endpoints: list[tuple[int, str | None]]) -> str:
    """The bpftrace program counting segments to or from `endpoints` ((port, IPv4 or None for any))."""
    clauses = []
    for port, address in endpoints:
        if not 0 < int(port) < 65536:
            raise ValueError(f"not a port: {port}")
        clause = f"($s == {int(port)} || $d == {int(port)})"
        if address is not None:
            number = _address_number(address)
            clause = f"({clause} && ($ip->saddr == {number} || $ip->daddr == {number}))"
        clauses.append(clause)
    condition = " || ".join(clauses) or "0"
    return "\n".join([
        "tracepoint:net:net_dev_start_xmit {",
        _MATCH.format(data="$skb->data + args->network_offset", condition=condition, direction=1), "}",
        "tracepoint:net:netif_receive_skb {",
        _MATCH.format(data="$skb->data", condition=condition, direction=0), "}",
        f'interval:ms:{TICK_MS} {{ printf("T %llu\\n", nsecs); print(@p); }}', ""])


def parse(lines: list[str]) -> list[tuple[float, dict[tuple[int, str], dict[str, int]]]]:
    """bpftrace's output as rows (t in s, {(netns inode, device): {rx_packets, tx_packets}})."""
    rows: list[tuple[float, dict]] = []
    for line in lines:
        line = line.strip()
        if line.startswith("T "):
            rows.append((int(line[2:]) / 1e9, {}))
            continue
        match = _LINE.match(line)
        if match and rows:
            inode, device, direction, count = match.groups()
            counters = rows[-1][1].setdefault((int(inode), device), {"rx_packets": 0, "tx_packets": 0})
            counters["tx_packets" if direction == "1" else "rx_packets"] = int(count)
    return rows


class HopTrace:
    """Context manager: bpftrace counting the endpoints' packets for the block; `rows` after it."""

    def __init__(self, endpoints: list[tuple[int, str | None]]):
        self.endpoints = endpoints
        self.rows: list[tuple[float, dict]] = []
        self.error: str | None = None
        self._lines: list[str] = []
        self._popen: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._ticking = threading.Event()

    def __enter__(self) -> "HopTrace":
        self._popen = subprocess.Popen(["bpftrace", "-e", program(self.endpoints)], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True, name="layerbench-hoptrace")
        self._reader.start()
        if not self._ticking.wait(START_DEADLINE_S):  # bpftrace compiles and attaches first (about a second)
            self.error = "bpftrace did not start: " + " | ".join(self._lines[-3:])
        return self

    def _read(self) -> None:
        for line in self._popen.stdout:
            self._lines.append(line)
            if line.startswith("T "):
                self._ticking.set()

    def __exit__(self, *exc_info) -> None:
        time.sleep(2 * TICK_MS / 1e3)  # one more tick past the window's end
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGINT)
        try:
            self._popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._reader.join(timeout=5)
        self._popen.stdout.close()
        self.rows = parse(self._lines)
        if not self.rows and self.error is None:
            self.error = "bpftrace printed nothing: " + " | ".join(line.strip() for line in self._lines[-3:])
