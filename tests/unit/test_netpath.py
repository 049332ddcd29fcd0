"""Per-hop counters: reading the kernel's counters, the window and per-request arithmetic, and the
`network_path` block a trial stores. No engine, no load: counters are fed by hand."""

from __future__ import annotations

import json
import os

import pytest

from bench.metrics import netcounters, netpath
from bench.metrics.netcounters import Counters, parse_dnat_packets, parse_net_dev
from bench.metrics.netpath import Forwarder, Inside, Interface, NetworkPath, PathProbe, crossings

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:6947335086 38589826    0    0    0     0          0         0 6947335086 38589826    0    0    0     0       0          0
  eth0: 907113255   25006    0    0    0     0          0         0  1535654   15531    0    0    0     0       0          0
"""

IPTABLES = """Chain DOCKER (2 references)
    pkts      bytes target     prot opt in     out     source               destination
       3      180 DNAT       6    --  *      *       0.0.0.0/0            127.0.0.1            tcp dpt:18080 to:10.226.26.2:8080
       7      420 DNAT       6    --  !docker0 *       0.0.0.0/0            127.0.0.1            tcp dpt:18081 to:172.17.0.3:8080
"""


def test_proc_net_dev_is_read_per_interface_even_when_a_counter_touches_the_colon():
    found = parse_net_dev(NET_DEV)
    assert found["lo"] == Counters(rx_packets=38589826, tx_packets=38589826, rx_bytes=6947335086, tx_bytes=6947335086)
    assert found["eth0"].rx_bytes == 907113255 and found["eth0"].tx_packets == 15531


def test_sysfs_counters_of_an_interface_and_none_for_one_that_is_gone(tmp_path):
    folder = tmp_path / "veth0" / "statistics"
    folder.mkdir(parents=True)
    for name, value in zip(netcounters.COUNTER_NAMES, (10, 20, 1000, 2000)):
        (folder / name).write_text(f"{value}\n")
    assert netcounters.read_sysfs("veth0", tmp_path) == Counters(10, 20, 1000, 2000)
    assert netcounters.read_sysfs("gone0", tmp_path) is None
    assert netcounters.read_sysfs("lo") is not None  # every Linux host has lo


def _write_counters(folder, values) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in zip(netcounters.COUNTER_NAMES, values):
        (folder / name).write_text(f"{value}\n")


def test_sysfs_files_kept_open_read_fresh_values_and_follow_an_interface_that_comes_and_goes(tmp_path):
    # The sampler reads these on every tick through descriptors kept open: each read must give the
    # value now, an interface not there yet reads None until it appears, one removed reads None.
    files = netcounters.SysfsFiles(tmp_path)
    assert files.read("veth0") is None
    _write_counters(tmp_path / "veth0" / "statistics", (10, 20, 1000, 2000))
    assert files.read("veth0") == Counters(10, 20, 1000, 2000)
    _write_counters(tmp_path / "veth0" / "statistics", (11, 22, 1100, 2200))
    assert files.read("veth0") == Counters(11, 22, 1100, 2200)
    (tmp_path / "veth0" / "statistics" / "rx_packets").write_text("")  # as a removed device's files read
    assert files.read("veth0") is None
    files.close()
    assert files.read("lo") is None  # not under tmp_path
    lo = netcounters.SysfsFiles()
    assert lo.read("lo") is not None  # every Linux host has lo
    lo.close()


def test_a_probe_closes_the_sysfs_files_it_kept_open():
    before = len(os.listdir("/proc/self/fd"))
    probe = PathProbe(netpath.loopback_path(), quiet_s=0.0)
    assert probe.read()["host:lo"] is not None
    assert len(os.listdir("/proc/self/fd")) == before + 4  # lo's four counters
    probe.after()
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_dnat_rule_of_one_port_is_found_and_a_port_without_one_says_so():
    assert parse_dnat_packets(IPTABLES, 18080) == 3
    assert parse_dnat_packets(IPTABLES, 18081) == 7
    assert parse_dnat_packets(IPTABLES, 9999) is None


def test_lo_counts_each_packet_twice_so_its_crossings_are_what_it_sent():
    counters = {"rx_packets": 200, "tx_packets": 200, "rx_bytes": 3000, "tx_bytes": 3000}
    assert crossings(counters, loopback=True) == (200, 3000)
    assert crossings({"rx_packets": 100, "tx_packets": 100, "rx_bytes": 1400, "tx_bytes": 1600}, False) == (200, 3000)


def _path() -> NetworkPath:
    return NetworkPath(steps=(Interface("lo", "loopback"), Forwarder("proxy"), Interface("docker0", "bridge"),
                              Inside("eth0", "its own namespace")), dnat_port=18080)


def _rows(rates: dict[str, float], start: float = 0.0, ticks: int = 41) -> list[tuple[float, dict]]:
    """Counters rising linearly at `rates` packets/s (100 bytes each), one row per 0.1 s tick."""
    rows = []
    for tick in range(ticks):
        t = start + tick / 10
        rows.append((t, {key: {"rx_packets": rate * t, "tx_packets": rate * t, "rx_bytes": 100 * rate * t,
                               "tx_bytes": 100 * rate * t} for key, rate in rates.items()}))
    return rows


def test_a_trial_stores_each_hop_per_request_over_the_measured_window_and_the_whole_span(monkeypatch):
    monkeypatch.setattr(netpath, "conntrack_entries", iter([100, 108]).__next__)
    answers = iter([(5, "read"), (6, "read")])
    monkeypatch.setattr(netpath, "dnat_packets", lambda port, chain: next(answers))
    probe = PathProbe(_path(), quiet_s=0.0)
    probe.quiet_rates = {"host:lo": {"rx_packets": 10.0, "tx_packets": 10.0, "rx_bytes": 0, "tx_bytes": 0},
                         "host:docker0": {"rx_packets": 0.0, "tx_packets": 0.0, "rx_bytes": 0, "tx_bytes": 0}}
    probe.before()
    probe.after()
    rows = _rows({"host:lo": 2000.0, "host:docker0": 1000.0})  # 4 s sampled
    before = {"net_dev": {"eth0": {"rx_packets": 10, "tx_packets": 10, "rx_bytes": 1000, "tx_bytes": 1000}}}
    after = {"net_dev": {"eth0": {"rx_packets": 2010, "tx_packets": 2010, "rx_bytes": 301000, "tx_bytes": 301000}}}
    block = probe.summary(rows, (1.0, 3.0), 2000, before, after, 2000)
    lo, proxy, docker0, inside = block["path"]
    assert lo["window"]["tx_packets"] == pytest.approx(4000)  # 2 s of the window at 2,000/s
    assert lo["packets_per_request"] == pytest.approx(2.0)  # lo: what it sent
    assert lo["bytes_per_request"] == pytest.approx(200.0)
    assert lo["span"]["tx_packets"] == pytest.approx(8000) and lo["span_s"] == pytest.approx(4.0)
    assert lo["background_share"] == pytest.approx(10 * 2 / 4000)  # the quiet rate over the window's packets
    assert proxy == {"step": "process", "role": "proxy"}
    assert docker0["packets_per_request"] == pytest.approx(2.0)  # rx + tx: 1,000/s each way
    assert inside["packets_per_request"] == pytest.approx(2.0) and inside["requests_served"] == 2000
    assert block["conntrack"] == {"entries_before": 100, "entries_after": 108, "entries_added": 8}
    assert block["dnat"] == {"port": 18080, "read": "read", "packets": 1}
    json.dumps(block)  # plain data, as run.json stores it


def test_a_hop_that_could_not_be_read_and_an_app_without_an_inside_view_say_so(monkeypatch):
    monkeypatch.setattr(netpath, "conntrack_entries", lambda: None)
    probe = PathProbe(NetworkPath(steps=(Interface("veth9", "veth"), Inside("eth0"))), quiet_s=0.0)
    probe.before()
    probe.after()
    rows = [(t, {"host:veth9": None}) for t in (0.0, 1.0)]
    block = probe.summary(rows, (0.2, 0.8), 100, {}, {}, None)
    veth, inside = block["path"]
    assert veth["window"] is None and "could not be read" in veth["missing"]
    assert "no inside view" in inside["missing"]
    assert block["conntrack"]["entries_added"] is None and "dnat" not in block


def test_the_quiet_baseline_is_a_rate_per_second_of_what_the_hops_carry_with_no_load(monkeypatch):
    reads = iter([{"host:lo": {"rx_packets": 0, "tx_packets": 0, "rx_bytes": 0, "tx_bytes": 0}},
                  {"host:lo": {"rx_packets": 5, "tx_packets": 5, "rx_bytes": 500, "tx_bytes": 500}}])
    probe = PathProbe(netpath.loopback_path(), quiet_s=0.25, sleep=lambda seconds: None)
    monkeypatch.setattr(probe, "read", lambda: next(reads))
    clock = iter([10.0, 10.5])
    monkeypatch.setattr(netpath.time, "monotonic", lambda: next(clock))
    probe.quiet()
    assert probe.quiet_rates["host:lo"]["tx_packets"] == pytest.approx(10.0)
    short = PathProbe(netpath.loopback_path(), quiet_s=0.0, sleep=lambda seconds: pytest.fail("no quiet window"))
    short.quiet()  # a trial too short for one (smoke runs, tests): its background stays unknown
    assert short.quiet_rates == {}


def test_the_quiet_baseline_is_a_quarter_of_the_trial_half_a_second_at_most():
    assert netpath.quiet_for(0.5) == 0.0  # a smoke trial: none
    assert netpath.quiet_for(1.0) == pytest.approx(0.25)  # the classroom's and quick's 1-s trials
    assert netpath.quiet_for(2.0) == pytest.approx(0.5)
    assert netpath.quiet_for(10.0) == pytest.approx(0.5)


def test_an_engine_namespace_is_read_through_one_of_its_processes(monkeypatch):
    seen = []

    def net_dev(pid):
        seen.append(pid)
        return {"lb-noproxy0": Counters(1, 2, 3, 4), "lo": Counters(0, 0, 0, 0)}
    monkeypatch.setattr(netpath, "read_net_dev", net_dev)
    path = NetworkPath(steps=(Interface("lo", "loopback", "engine", 4242),
                              Interface("lb-noproxy0", "bridge", "engine", 4242), Interface("lo", "loopback")))
    found = path.read()
    assert found["engine:lb-noproxy0"] == {"rx_packets": 1, "tx_packets": 2, "rx_bytes": 3, "tx_bytes": 4}
    assert found["engine:lo"]["tx_packets"] == 0 and found["host:lo"] is not None  # the host's lo from sysfs
    assert seen == [4242]  # one read of /proc/<pid>/net/dev for the namespace, however many hops


def test_the_app_reports_its_interfaces_from_inside_its_layer():
    from bench.app.server import do_stats

    interfaces = json.loads(do_stats())["net_dev"]
    assert set(interfaces["lo"]) == {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets"}


def test_the_ebpf_program_counts_only_the_apps_endpoints_and_its_output_becomes_rows():
    from bench.metrics import hoptrace

    text = hoptrace.program([(41051, None), (8080, "10.226.26.2")])
    assert "($s == 41051 || $d == 41051)" in text
    assert f"$ip->saddr == {0x021ae20a}" in text  # 10.226.26.2 as the kernel's big-endian word reads here
    assert text.count("tracepoint:net:") == 2 and "interval:ms:100" in text
    with pytest.raises(ValueError):
        hoptrace.program([(0, None)])
    rows = hoptrace.parse(["Attaching 3 probes...\n", "T 2000000000\n", "@p[4026531833, lo, 1]: 10\n",
                           "@p[4026531833, lo, 0]: 10\n", "T 2100000000\n", "@p[4026531833, lo, 1]: 30\n",
                           "@p[4026532400, veth9a, 0]: 4\n"])
    assert rows == [(2.0, {(4026531833, "lo"): {"rx_packets": 10, "tx_packets": 10}}),
                    (2.1, {(4026531833, "lo"): {"rx_packets": 0, "tx_packets": 30},
                           (4026532400, "veth9a"): {"rx_packets": 4, "tx_packets": 0}})]


def test_traced_packets_are_read_over_the_same_window_as_the_counters(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(netpath, "conntrack_entries", lambda: None)
    probe = PathProbe(netpath.loopback_path(), quiet_s=0.0, trace=True, port=5000)
    inode = netpath._netns_inode(Interface("lo", "loopback"))
    probe.tracer = SimpleNamespace(rows=[(t / 10, {(inode, "lo"): {"rx_packets": 0, "tx_packets": 300 * t}})
                                         for t in range(41)], error=None)
    block = probe.summary(_rows({"host:lo": 3000.0}), (1.0, 3.0), 3000, {}, {}, None)
    lo = block["path"][0]
    assert lo["traced_packets_per_request"] == pytest.approx(2.0)  # 6,000 of the app's own in the window
    assert lo["packets_per_request"] == pytest.approx(2.0)
    assert block["traced"] == {"by": "bpftrace", "endpoints": [[5000, None]]}
