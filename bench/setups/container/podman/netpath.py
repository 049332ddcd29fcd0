"""The path a request to a Podman container takes, hop by hop (a bench.metrics.netpath.NetworkPath).

    host network     lo, the app on the host's lo (rootful and rootless alike)
    rootful bridge   netavark's bridge (podman0) and the container's veth (kernel DNAT, no proxy),
                     eth0 inside; not lo: the DNAT in OUTPUT routes a connection to 127.0.0.1 straight
                     onto the bridge (measured: 0.1 packets per request on lo, 2 on podman0)
    rootless bridge  lo, then a user-space forwarder: rootlessport, whose child in the container's
                     namespace connects to the app over that namespace's lo (measured: the app's lo
                     carries the requests); or, with port_handler: slirp4netns, slirp4netns itself,
                     which writes each packet into the namespace's tap0
"""

from __future__ import annotations

from bench.setups.container import networking

ROOTFUL_NETWORK = "podman"  # Podman's default network: a netavark bridge
DEFAULT_BRIDGE = "podman0"


def bridge_name(podman) -> str:
    """The host interface of Podman's default network, as `podman network inspect` reports it."""
    try:
        found = podman.json("network", "inspect", ROOTFUL_NETWORK) or [{}]
        return str(found[0].get("network_interface") or DEFAULT_BRIDGE)
    except Exception:
        return DEFAULT_BRIDGE


def network_path(options, podman, init_pid: int, host_port: int):
    """The steps a request to this Podman variant takes (interfaces named as they are now)."""
    from bench.metrics.netpath import Forwarder, Inside, Interface, NetworkPath
    from bench.setups.container.podman.attribution import ROOTLESSPORT, SLIRP4NETNS

    if options.network == "host":
        return networking.path_of("host", True, networking.PUBLISHED, init_pid, None, host_port)
    if not options.rootless:
        path = networking.path_of("bridge", False, networking.PUBLISHED, init_pid, bridge_name(podman), host_port)
        path.steps = tuple(step for step in path.steps if not (isinstance(step, Interface) and step.loopback))
        path.facts["engine"] = "podman (netavark bridge, kernel DNAT)"
        return path
    if options.port_handler == "slirp4netns":
        inside = Inside("tap0", "the container's own network namespace: slirp4netns writes every packet into its tap0")
        forwarder = Forwarder(SLIRP4NETNS.key)
    else:
        inside = Inside("lo", "the container's own network namespace: rootlessport's child connects to the app over "
                        "that namespace's lo")
        forwarder = Forwarder(ROOTLESSPORT.key)
    return NetworkPath(steps=(Interface("lo", "loopback"), forwarder, inside), facts={"engine": "podman rootless"},
                       endpoints=[(host_port, None)])
