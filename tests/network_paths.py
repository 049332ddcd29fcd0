"""SYNTHETIC network paths for the frozen fixture run (test data only, never a measurement): each load
trial gets the `network_path` block its layer's setup would record, shaped like a real one."""

from __future__ import annotations


def _interface(name: str, kind: str, packets: float, size: float, netns: str = "host") -> dict:
    return {"step": "interface", "name": name, "kind": kind, "netns": netns, "packets_per_request": packets,
            "bytes_per_request": size, "background_share": 0.001, "quiet_packets_per_s": 2.0,
            "window": {"rx_packets": 0, "tx_packets": 0, "rx_bytes": 0, "tx_bytes": 0}}


def _inside(name: str, packets: float = 2.0, size: float = 340.0) -> dict:
    return {"step": "inside", "name": name, "note": "synthetic", "packets_per_request": packets,
            "bytes_per_request": size, "requests_served": 1000}


PATHS = {
    ("bare", "default"): [_interface("lo", "loopback", 2.0, 356.0), _inside("lo")],
    ("container", "host"): [_interface("lo", "loopback", 2.0, 356.0), _inside("lo")],
    ("container", "bridge"): [_interface("lo", "loopback", 2.0, 356.0), {"step": "process", "role": "proxy"},
                              _interface("docker0", "bridge", 2.0, 326.0), _interface("veth1a2b3c4", "veth", 2.0, 340.0),
                              _inside("eth0")],
    ("vm", "tcg"): [_interface("lo", "loopback", 2.0, 356.0), {"step": "process", "role": "hypervisor"},
                    _inside("eth0", 2.0, 420.0)],
}


def with_network_paths(data: dict) -> None:
    """Every load trial of the fixture gets its layer's path, a mean latency and a mean in-app time."""
    for trial in data["trials"]:
        path = PATHS.get((trial["setup"], trial["variant"]))
        if path is None or not trial.get("load"):
            continue
        load = trial["load"]
        load["latency_mean_ms"] = load["latency_ms"]["p50"] * 1.1
        load["app_mean_ms"] = load["app_ms"]["p50"]
        trial["network_path"] = {"window_s": load["duration_s"], "requests": load["requests"], "quiet_s": 0.5,
                                 "path": [dict(step) for step in path],
                                 "conntrack": {"entries_before": 10, "entries_after": 12, "entries_added": 2},
                                 **({"dnat": {"port": 40000, "read": "synthetic", "packets": 0}}
                                    if trial["variant"] == "bridge" else {})}
