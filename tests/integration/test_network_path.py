"""The network path hop by hop, against the real engine and the real kernel counters.

- One trial's counters against `ip -s link` deltas taken around it: the kernel's own counters read
  by another tool must agree with what the trial stored.
- The three bridge variants: at the container's IP (no port published, only that address loaded),
  behind docker-proxy, and without it in a private dockerd, which must leave nothing behind: not when
  the run ends, not after Ctrl-C, and after a kill -9 of the runner `bench clean` removes the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.results import load_run
from bench.runner import Runner, generator_for
from bench.runner.measure import measure_trial
from bench.runner.plan import starts_for
from bench.scenario import Scenario
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup, private_engine
from bench.setups.container.engine import clean_leftovers
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.docker]

RUN_ID = f"test-netpath-{os.getpid()}"
HELLO_C1 = {"name": "hello-c1", "endpoint": "hello", "connections": 1, "duration": 1.5, "warmup": 0.3}
NO_PROXY = {"container": {"network": "bridge", "userland_proxy": False}}


@pytest.fixture(scope="module")
def docker_here():
    reason = ContainerSetup.check()
    require(reason is None, f"a Docker daemon: {reason}")
    yield
    clean_leftovers(RUN_ID)


def _ip_link() -> dict[str, dict[str, int]]:
    """Every host interface's counters as `ip -s -j link` reports them."""
    links = json.loads(subprocess.run(["ip", "-s", "-j", "link", "show"], capture_output=True, text=True,
                                      check=True, timeout=10).stdout)
    return {link["ifname"]: {f"{way}_{unit}": link["stats64"][way][unit] for way in ("rx", "tx")
                             for unit in ("packets", "bytes")} for link in links}


def _scenario(setups: list, workloads: list | None = None) -> Scenario:
    return Scenario.model_validate({"name": "netpath-test", "setups": setups, "workloads": workloads or [HELLO_C1],
                                    "repeat": 1})


def _steps(record) -> dict[str, dict]:
    """A trial's path steps by name (a veth as "veth"), each as the trial stored it."""
    return {("veth" if step.kind == "veth" else step.name or step.role) + (
        "@inside" if step.step == "inside" else ""): step.stored() for step in record.network_path.path}


def test_one_trials_counters_agree_with_ip_s_link_deltas_taken_around_it(docker_here):
    scenario = _scenario([{"container": {"network": "bridge"}}])
    setup = ContainerSetup({"network": "bridge"}, Pinning.default(), RUN_ID, workdir="/tmp")
    setup.prepare()
    (trial,), = starts_for(scenario, scenario.setups[0], 0)
    with setup.running() as instance:
        veth = next(step.name for step in instance.network_path.interfaces if step.kind == "veth")
        before = _ip_link()
        record = measure_trial(instance, trial, setup.variant(), True, generator_for(setup.pinning)).record
        after = _ip_link()
    assert record.status == "ok", record.error
    steps = _steps(record)
    assert list(steps) == ["lo", "proxy", "docker0", "veth", "eth0@inside"]
    for name, key in (("lo", "lo"), ("docker0", "docker0"), (veth, "veth")):
        around = {counter: after[name][counter] - before[name][counter] for counter in after[name]}
        span, window = steps[key]["span"], steps[key]["window"]
        for counter, value in span.items():
            # Counters only grow, and ip's two reads bracket the trial's first and last sample.
            assert 0 < window[counter] <= value <= around[counter], (name, counter, window, span, around)
        if key == "veth":  # this container's own: only the /stats reads and the load's edges beyond the
            # first and last sample add to it (~110 requests when a loaded machine delays a sample)
            outside = around["rx_packets"] + around["tx_packets"] - span["rx_packets"] - span["tx_packets"]
            assert outside < max(100, 0.05 * (span["rx_packets"] + span["tx_packets"])), (outside, span)
    veth_step, inside = steps["veth"], steps["eth0@inside"]
    assert veth_step["packets_per_request"] == pytest.approx(2.0, rel=0.1)  # a request and its reply, keep-alive
    assert inside["packets_per_request"] == pytest.approx(veth_step["packets_per_request"], rel=0.1)  # the other end
    assert record.network_path.dnat.packets == 0  # docker-proxy took every connection on 127.0.0.1
    print(f"\n{veth}: {veth_step['packets_per_request']:.3f} packets, {veth_step['bytes_per_request']:.0f} bytes per "
          f"request; ip -s link around the trial: {after[veth]['tx_packets'] - before[veth]['tx_packets']} sent")


def test_ebpf_counts_of_the_apps_own_packets_agree_with_the_interface_counters(docker_here):
    """The same trial counted twice: by every interface's counters (all traffic) and by bpftrace (the
    app's own connections only). On the container's own veth, which carries nothing else, they must agree;
    lo and docker0 are shared (the suite runs in two workers, CI's other traffic), so there eBPF's count
    is the app's ~2 packets per request and never more than the counters'."""
    from bench.metrics.hoptrace import unavailable_reason

    require(unavailable_reason() is None, f"eBPF tracing: {unavailable_reason()}")
    scenario = _scenario([{"container": {"network": "bridge"}}])
    setup = ContainerSetup({"network": "bridge"}, Pinning.default(), RUN_ID, workdir="/tmp")
    setup.prepare()
    (trial,), = starts_for(scenario, scenario.setups[0], 0)
    with setup.running() as instance:
        record = measure_trial(instance, trial, setup.variant(), True, generator_for(setup.pinning),
                               trace_hops=True).record
    assert record.status == "ok" and "unavailable" not in record.network_path.traced.stored(), record.network_path
    for name, step in _steps(record).items():
        if step["step"] != "interface":
            continue
        traced, counted = step["traced_packets_per_request"], step["packets_per_request"]
        if name == "veth":  # within 5%: bpftrace's counts come every 100 ms, the counters' per sampler tick
            assert traced == pytest.approx(counted, rel=0.05), name
        else:  # a request and its reply on keep-alive connections, whatever else crossed the interface
            assert traced == pytest.approx(2.0, rel=0.1) and traced <= counted * 1.03, (name, traced, counted)
        print(f"\n{name}: counters {step['packets_per_request']:.3f}, eBPF {step['traced_packets_per_request']:.3f}"
              f" packets per request")


def _engine_folders() -> set[Path]:
    return set(private_engine.engine_folders())


def test_three_bridge_variants_side_by_side_and_the_private_dockerd_leaves_nothing(docker_here, tmp_path):
    require(private_engine.unavailable_reason() is None, f"a private dockerd: {private_engine.unavailable_reason()}")
    before, host_rules = _engine_folders(), subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    scenario = _scenario([{"container": {"network": "bridge", "reach": "container-ip"}},
                          {"container": {"network": "bridge"}}, NO_PROXY])
    run_dir = Runner(scenario, tmp_path).run()
    trials = {trial.variant: trial for trial in load_run(run_dir).trials}
    assert set(trials) == {"bridge,container-ip", "bridge", "bridge,no-proxy"}
    assert all(trial.status == "ok" for trial in trials.values()), [t.error for t in trials.values()]
    direct, proxied, kernel = trials["bridge,container-ip"], trials["bridge"], trials["bridge,no-proxy"]
    # At the container's IP: no port published, no proxy, only docker0 and its veth on the way.
    assert direct.network_path.reached_at == direct.facts.reached_at
    assert direct.network_path.reached_at.startswith("172.") and "proxy" not in direct.roles
    assert list(_steps(direct)) == ["docker0", "veth", "eth0@inside"]
    # Behind docker-proxy: its CPU per request is there.
    assert proxied.roles["proxy"].cpu_user_s + proxied.roles["proxy"].cpu_sys_s > 0
    # Without it: no docker-proxy at all, the kernel rewrote the connections, lo of its namespace idle.
    assert "proxy" not in kernel.roles and kernel.network_path.dnat.packets >= 1
    steps = _steps(kernel)
    assert list(steps) == ["lo", "lb-noproxy0", "veth", "eth0@inside"] and steps["lo"]["netns"] == "engine"
    assert steps["lo"]["packets_per_request"] < 0.05
    assert steps["veth"]["packets_per_request"] == pytest.approx(2, rel=0.1)
    folder = Path(kernel.facts.engine_folder)
    # Nothing of this process's engines is left (the other worker's runs may have their own meanwhile).
    mine = f"{private_engine.PREFIX}{os.getpid()}-"
    assert not folder.exists() and {f for f in _engine_folders() - before if f.name.startswith(mine)} == set()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or ())]
    after_rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert "lb-noproxy0" not in after_rules and kernel.facts.bridge_subnet not in after_rules  # never the host's
    assert "lb-noproxy0" not in host_rules


def _bench(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def _wait_for_engine(before: set[Path], deadline_s: float = 120) -> Path:
    """The new private engine's folder, once its dockerd answers."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for folder in _engine_folders() - before:
            if (folder / "docker.sock").exists() and (folder / "data" / "image").exists():
                return folder
        time.sleep(0.5)
    raise AssertionError("no private dockerd started")


def _wait_for_a_container(folder: Path, deadline_s: float = 120) -> None:
    """Until a container runs in the private dockerd of `folder` (the app's, once its image is loaded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        listed = subprocess.run(["docker", "-H", f"unix://{folder}/docker.sock", "ps", "-q"], capture_output=True,
                                text=True, timeout=30)
        if listed.stdout.strip():
            return
        time.sleep(0.2)
    raise AssertionError("no container ever ran in the private dockerd")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_after_ctrl_c_or_a_kill_the_private_dockerd_is_gone(docker_here, tmp_path, how, sole_cleaner):
    """Ctrl-C: the runner removes it itself. kill -9: the kernel tells dockerd (it stops its
    containers), and `bench clean` removes what is left: its processes, cgroups and folder."""
    require(private_engine.unavailable_reason() is None, f"a private dockerd: {private_engine.unavailable_reason()}")
    scenario = tmp_path / "noproxy.yaml"
    scenario.write_text("name: noproxy\nsetups:\n  - container: {network: bridge, userland_proxy: false}\n"
                        "workloads:\n  - {name: hello, endpoint: hello, connections: 1, duration: 60, warmup: 0}\n")
    before = _engine_folders()
    runner = _bench("run", str(scenario), "--out", str(tmp_path / "results"), "--no-report")
    try:
        folder = _wait_for_engine(before)
        _wait_for_a_container(folder)  # into the trial: the app's container runs in it
        runner.send_signal(getattr(signal, how))
        runner.wait(timeout=90)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        printed = runner.stdout.read()
        runner.stdout.close()
    if how == "SIGKILL":
        dockerd_gone = time.monotonic() + 60  # told by the kernel (SIGTERM): stops its containers, then exits
        while time.monotonic() < dockerd_gone and any(
                "dockerd" in (p.info["name"] or "") and str(folder) in " ".join(p.info["cmdline"] or ())
                for p in psutil.process_iter(["name", "cmdline"])):
            time.sleep(0.5)
        assert folder.exists()  # a dead runner removes nothing itself
        run_id = json.loads((folder / private_engine.OWNER_FILE).read_text())["run_id"]
        cleaned = subprocess.run([sys.executable, "-m", "bench", "clean", "--run", run_id, "--results",
                                  str(tmp_path / "results")], capture_output=True, text=True, timeout=120)
        assert f"private dockerd {folder}" in cleaned.stdout, cleaned.stdout + cleaned.stderr
    else:
        assert runner.returncode == 130, printed
    assert not folder.exists()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or ())]
    assert not list(Path("/sys/fs/cgroup/memory").glob(f"{folder.name}*"))
