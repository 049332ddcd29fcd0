"""A container's network variants and the path its requests take, hop by hop (bench.metrics.netpath).

Three ways to reach an app on a bridge network, each isolating one hop:
- published port with the userland proxy (Docker's default): client -> lo -> docker-proxy (a process
  that copies every byte between two sockets) -> docker0 -> the container's veth -> its eth0;
- published port without it (`userland_proxy: false`): kernel DNAT with hairpin NAT, in a private
  dockerd of the run's own (bench.setups.container.private_engine): client -> its bridge -> veth -> eth0;
- the container's own IP (`reach: container-ip`): no published port, no proxy, no NAT: what another
  container on the bridge sees: client -> docker0 -> veth -> eth0.
And host networking: the app in the host's namespace, client -> lo -> app.

The container IP is the one exception to loopback-only, like a split run's `--load-from`: opted into
by the variant, only ever the IP the engine reports for the container this run started, and only when
that IP lies in the engine's bridge subnet and the host routes it straight onto that bridge (a local
interface): `checked_direct_address`. Nothing else is ever loaded.

`NetworkVariants` gives the container setup these variants: it starts and releases the private
engine, keeps the runner's thread in that engine's namespace while an instance runs, refuses the
variants in a split run, and works out each instance's address and path.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from bench.errors import SetupError
from bench.netutil import LOOPBACK
from bench.roles import PROXY

PUBLISHED, CONTAINER_IP = "published", "container-ip"
DNAT_CHAIN = "DOCKER"  # the nat table's chain where dockerd writes a published port's DNAT rule
BRIDGE_OPTION = "com.docker.network.bridge.name"
GVISOR_INSIDE_NOTE = ("under gVisor the app's /proc/net/dev is written by gVisor's sentry, not by a kernel it shares: "
                      "with --network=host (how it runs here) the sentry hands on the host's own counters (its lo "
                      "moved exactly as the host's did), so it counts all of the host's lo; with gVisor's own "
                      "netstack it would count the sandbox's interfaces")


def options_problem(network: str, userland_proxy: bool, reach: str, runtime: str, engine: str = "docker") -> str | None:
    """Why these network options do not go together, or None."""
    if reach == CONTAINER_IP and network != "bridge":
        return "reach: container-ip needs network: bridge (a host-network container has no address of its own)"
    if not userland_proxy:
        if network != "bridge" or reach != PUBLISHED:
            return "userland_proxy: false is about a published port: it needs network: bridge and reach: published"
        if runtime != "runc":
            return "userland_proxy: false runs in a private dockerd that knows runc only"
        if engine != "docker":
            return "userland_proxy: false is a Docker daemon setting"
    return None


def variant_parts(userland_proxy: bool, reach: str) -> list[str]:
    """What the variant's name adds: no-proxy, container-ip (nothing for Docker's default)."""
    return (["no-proxy"] if not userland_proxy else []) + (["container-ip"] if reach == CONTAINER_IP else [])


def explanation(network: str, userland_proxy: bool, reach: str) -> str:
    """Where this variant's network cost comes from, in plain words."""
    if network == "host":
        return (" With host networking the container shares the host's network stack: no proxy and no NAT on the "
                "request path.")
    if reach == CONTAINER_IP:
        return (" The load goes straight to the container's own address on Docker's bridge, as another container "
                "would: no published port, no proxy, no NAT; every packet crosses the bridge and the container's "
                "veth pair. This is the one case where the load does not target 127.0.0.1: only that container's "
                "address, on a local bridge.")
    if not userland_proxy:
        return (" The port is published without the userland proxy: the kernel rewrites each new connection's "
                "destination (DNAT, hairpin NAT for 127.0.0.1) and the packets go straight through the bridge and "
                "the veth pair, with no process copying bytes. Docker runs this way with --userland-proxy=false; "
                "layerbench starts a private dockerd so set for the run, in a network namespace of its own (the "
                "load generator enters it and connects to 127.0.0.1 there), and never changes the user's daemon.")
    return (" With a published port (bridge networking), every connection goes through docker-proxy, a userland "
            "process that copies each byte between two sockets, and through NAT rules that rewrite packets; that "
            "is the cost a tiny request feels most. layerbench pins the shim and the proxy to the app's CPUs, so "
            "the proxy's work comes out of the same CPU budget the bare app had to itself.")


def stack_detail(network: str, userland_proxy: bool, reach: str) -> str:
    """The network part of the container engine's box in the layer-stack figure."""
    if network == "host":
        return ""
    if reach == CONTAINER_IP:
        return "; bridge + veth, no NAT"
    return "; kernel DNAT, no proxy" if not userland_proxy else "; docker-proxy + NAT"


# ---- the bridge and the container's end of it --------------------------------------------------


def bridge_of(client, network: str = "bridge") -> tuple[str, ipaddress.IPv4Network]:
    """(bridge interface, subnet) of an engine's network, as the engine reports them."""
    try:
        attrs = client.networks.get(network).attrs
        name = (attrs.get("Options") or {}).get(BRIDGE_OPTION) or "docker0"
        subnet = ipaddress.ip_network(attrs["IPAM"]["Config"][0]["Subnet"], strict=False)
    except Exception as error:
        raise SetupError(f"cannot read the engine's {network} network: {error}") from None
    return name, subnet


def container_address(container, network: str = "bridge") -> str:
    """The IP the engine reports for the container on `network` (read back after start)."""
    settings = (container.attrs.get("NetworkSettings") or {})
    address = ((settings.get("Networks") or {}).get(network) or {}).get("IPAddress") or settings.get("IPAddress")
    if not address:
        raise SetupError(f"the engine reports no address for container {container.name} on its {network} network")
    return address


def direct_problem(address: str, subnet: ipaddress.IPv4Network, bridge: str, route: dict | None,
                   bridge_exists: bool) -> str | None:
    """Why `address` may not be loaded directly, or None: it must lie in the bridge's subnet, be no
    loopback or gateway, and the host must route it straight onto that bridge (`ip -j route get`)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        return f"{address} is not a container's address"
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        return f"{address} is not in the bridge {bridge}'s subnet {subnet}"
    if not bridge_exists:
        return f"{bridge} is not a bridge interface of this host"
    if not route or route.get("dev") != bridge:
        return f"this host does not route {address} onto {bridge} ({(route or {}).get('dev') or 'no route'})"
    if route.get("gateway"):
        return f"this host routes {address} through a gateway ({route['gateway']}), not straight onto {bridge}"
    return None


def _route_to(address: str) -> dict | None:
    ip_tool = shutil.which("ip") or "/usr/sbin/ip"
    try:
        done = subprocess.run([ip_tool, "-j", "route", "get", address], capture_output=True, text=True, timeout=10,
                              check=False)
        routes = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return routes[0] if routes else None


def checked_direct_address(client, container, network: str = "bridge") -> tuple[str, dict]:
    """The container's own IP, after every check (`direct_problem`), and what to record about it;
    SetupError naming the problem otherwise. Asked again before every trial that loads it."""
    bridge, subnet = bridge_of(client, network)
    container.reload()
    address = container_address(container, network)
    is_bridge = (Path("/sys/class/net") / bridge / "bridge").is_dir()
    problem = direct_problem(address, subnet, bridge, _route_to(address), is_bridge)
    if problem is not None:
        raise SetupError(f"refusing to load the container directly: {problem}")
    return address, {"reached_at": address, "bridge": bridge, "bridge_subnet": str(subnet)}


def app_endpoint(container, host_port: int | None, network: str = "bridge") -> tuple[int, str] | None:
    """(port, IP) the app answers on inside the container, as the engine reports them: the port a
    published host port maps to (or the first one the image exposes), on the container's address."""
    container.reload()
    settings = container.attrs.get("NetworkSettings") or {}
    ports = settings.get("Ports") or {}
    inside = next((key for key, bindings in ports.items() for binding in (bindings or ())
                   if host_port is not None and str(binding.get("HostPort")) == str(host_port)), None)
    exposed = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    inside = inside or next(iter(ports), None) or next(iter(exposed), None)
    try:
        return int(str(inside).split("/")[0]), container_address(container, network)
    except (ValueError, SetupError):
        return None


def peer_index(pid: int) -> int | None:
    """The host-side ifindex of the veth whose other end is eth0 in process `pid`'s namespace
    (`ip -j link` run there: its link_index); None when it cannot be read (not root)."""
    nsenter, ip_tool = shutil.which("nsenter"), shutil.which("ip") or "/usr/sbin/ip"
    if nsenter is None or not pid:
        return None
    try:
        done = subprocess.run([nsenter, f"--net=/proc/{pid}/ns/net", ip_tool, "-j", "link", "show", "dev", "eth0"],
                              capture_output=True, text=True, timeout=10, check=False)
        links = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return links[0].get("link_index") if links else None


def interface_named(index: int, netns_pid: int | None = None) -> str | None:
    """The name of interface `index` in the host's namespace, or in `netns_pid`'s."""
    if netns_pid is None:
        for folder in Path("/sys/class/net").iterdir():
            try:
                if int((folder / "ifindex").read_text()) == index:
                    return folder.name
            except (OSError, ValueError):
                continue
        return None
    nsenter, ip_tool = shutil.which("nsenter"), shutil.which("ip") or "/usr/sbin/ip"
    try:
        done = subprocess.run([nsenter or "nsenter", f"--net=/proc/{netns_pid}/ns/net", ip_tool, "-j", "link"],
                              capture_output=True, text=True, timeout=10, check=False)
        links = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return next((link.get("ifname") for link in links if link.get("ifindex") == index), None)


def path_of(network: str, userland_proxy: bool, reach: str, init_pid: int, bridge: str | None,
            host_port: int | None, gvisor: bool = False, engine_pid: int | None = None,
            reached_at: str | None = None, facts: dict | None = None,
            endpoints: list[tuple[int, str | None]] | None = None):
    """The steps a request to this container takes (a bench.metrics.netpath.NetworkPath), with the
    interfaces named as they are now (the veth's host end found through the container's eth0);
    `engine_pid`: a private engine's dockerd."""
    from bench.metrics.netpath import ENGINE, HOST, ON_HOST_NOTE, Forwarder, Inside, Interface, NetworkPath

    if network == "host":
        return NetworkPath(steps=(Interface("lo", "loopback"),
                                  Inside("lo", GVISOR_INSIDE_NOTE if gvisor else ON_HOST_NOTE)), facts=facts or {})
    netns = ENGINE if engine_pid else HOST
    index = peer_index(init_pid)
    veth = interface_named(index, engine_pid) if index is not None else None
    wire = [Interface(bridge or "docker0", "bridge", netns, engine_pid)]
    if veth:
        wire.append(Interface(veth, "veth", netns, engine_pid))
    inside = Inside("eth0", GVISOR_INSIDE_NOTE if gvisor else "the container's own network namespace: its end of the "
                    "veth pair")
    facts = {**(facts or {}), **({} if veth else {"veth": "unknown: reading the container's namespace needs root"})}
    endpoints = ([(host_port, None)] if host_port else []) + list(endpoints or [])
    if reach == CONTAINER_IP:
        return NetworkPath(steps=(*wire, inside), reached_at=reached_at, facts=facts, endpoints=endpoints)
    if not userland_proxy:  # the client sits in the engine's namespace: its lo, then the bridge (DNAT)
        return NetworkPath(steps=(Interface("lo", "loopback", netns, engine_pid), *wire, inside),
                           dnat_port=host_port, dnat_chain=DNAT_CHAIN, facts=facts, endpoints=endpoints)
    return NetworkPath(steps=(Interface("lo", "loopback"), Forwarder(PROXY.key), *wire, inside), dnat_port=host_port,
                       dnat_chain=DNAT_CHAIN, facts=facts, endpoints=endpoints)


def caveats(reach: str, engine) -> list[str]:
    """What a reader must know about this variant's figures (`engine`: a running PrivateEngine or None)."""
    found = []
    if reach == CONTAINER_IP:
        found.append("Loaded at the container's own IP on Docker's bridge, not at 127.0.0.1: the one exception to "
                     "loopback-only, asked for by this variant; only that container's address, checked to be on a "
                     "local bridge before every trial (each trial records it).")
    if engine is not None:
        found.append(f"Published without docker-proxy by a private dockerd of this run, in its own network namespace "
                     f"(bridge {engine.bridge}, {engine.subnet}); the load generator entered that namespace and "
                     f"connected to 127.0.0.1 there. The user's daemon was not changed.")
    return found


class NetworkVariants:
    """Mixed into the container setup: what its network variants need beyond a plain `docker run`.
    Expects the setup's `options`, `address`, `run_id`, `progress`, `client()`, `_image`, `_gvisor()`
    and an `_engine` attribute (None until a private engine runs)."""

    def _network_explanation(self) -> str:
        options = self.options
        return explanation(options.network, options.userland_proxy, options.reach)

    def _network_caveats(self) -> list[str]:
        return caveats(self.options.reach, self._engine)

    def _refuse_split_for_network_variants(self) -> None:
        options = self.options
        if self.address != LOOPBACK and (options.reach != PUBLISHED or not options.userland_proxy):
            raise SetupError("this network variant loads the container on this machine only; not in a split run")

    def _start_private_engine_if_asked(self) -> None:
        """With userland_proxy: false, start the run's private dockerd once and copy the app's image into
        it (the image is built in the user's daemon first); release() stops it."""
        if self.options.userland_proxy or self._engine is not None:
            return
        from bench.setups.container.private_engine import PrivateEngine

        self.progress("starting a private dockerd (--userland-proxy=false) in a network namespace of its own")
        started = PrivateEngine(self.run_id)
        try:
            started.start()
            started.load_image(self.client(), self._image.tag)
        except BaseException:
            started.stop()
            raise
        self._engine = started

    def release(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[object]:
        """As every setup; with a private engine, the runner's thread inside its network namespace the
        whole time (launch, readiness, trials, stop), so whatever talks to the app's port reaches it there."""
        with self._engine.entered() if self._engine is not None else contextlib.nullcontext():
            with super().running() as instance:
                yield instance

    def _network_path(self, container, init_pid: int, port: int):
        """(the address the app is loaded at, the path its requests take): 127.0.0.1 (or the split
        run's address), or for reach: container-ip the container's own IP after every check."""
        options = self.options
        engine_pid = self._engine.pid if self._engine is not None else None
        facts = self._engine.facts() if self._engine is not None else {}
        address, bridge, direct = self.address, None, options.reach == CONTAINER_IP
        if options.network == "bridge":
            bridge = bridge_of(self.client())[0]
            if direct:
                address, more = checked_direct_address(self.client(), container)
                facts.update(more)
        inside = app_endpoint(container, None if direct else port) if options.network == "bridge" else None
        path = path_of(options.network, options.userland_proxy, options.reach, init_pid, bridge,
                       None if direct else port, self._gvisor(), engine_pid, address if direct else None, facts,
                       [inside] if inside else [])
        if direct:
            path.check_reach = lambda: checked_direct_address(self.client(), container)
        return address, path
