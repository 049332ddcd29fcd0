"""The journey of one request: the model's waterfall, the report's section and the demo's screen,
from the SYNTHETIC fixture run given synthetic network paths (tests/network_paths.py)."""

from __future__ import annotations

import statistics

import pytest
from rich.console import Console

from bench.outputs.journey_screen import journey_lines
from bench.model import Run
from bench.model.journey import hops, journey_workload, journeys
from bench.outputs.plots.journey import crossed_before, hop_text
from bench.outputs.report import render_report
from tests.network_paths import with_network_paths
from tests.unit.test_plots import copy_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run.load(copy_run(tmp_path_factory.mktemp("journey"), with_network_paths))


def test_the_segments_of_each_layer_add_up_to_its_measured_mean_latency(run):
    found = journeys(run)
    assert [item.key for item in found] == run.layer_keys  # every layer, in the run's order
    for item in found:
        cell = run.cell(*item.key, item.workload)
        assert item.latency_us == pytest.approx(statistics.median(trial.load.latency_mean_ms for trial in cell.ok)
                                                * 1e3)
        # Drawn end to end they reach the latency; CPU beyond it (overlapped work) is said, not drawn.
        assert sum(segment.us for segment in item.segments) == pytest.approx(item.latency_us + item.overlap_us)
        assert item.segments[-1].kind == "unattributed" and item.latency_source == "mean latency"


def test_the_proxy_and_qemu_segments_are_their_cpu_per_request_qemu_less_the_app_inside_it(run):
    bridge = next(item for item in journeys(run) if item.key == ("container", "bridge"))
    proxy = next(segment for segment in bridge.segments if segment.role == "proxy")
    cell = run.cell("container", "bridge", bridge.workload)
    assert proxy.us == pytest.approx(cell.roles["proxy"].cpu_user_us_per_request
                                     + cell.roles["proxy"].cpu_sys_us_per_request)
    vm = next(item for item in journeys(run) if item.key[0] == "vm")
    qemu = next(segment for segment in vm.segments if segment.role == "hypervisor")
    vm_cell = run.cell(*vm.key, vm.workload)
    qemu_cpu = vm_cell.roles["hypervisor"]
    whole = qemu_cpu.cpu_user_us_per_request + qemu_cpu.cpu_sys_us_per_request
    assert qemu.us == pytest.approx(whole - vm_cell.inside.cpu_us_per_request)
    app = next(segment for segment in vm.segments if segment.kind == "app")
    in_app = next(segment for segment in vm.segments if segment.kind == "in_app")
    # The app's own CPU seen from inside the guest, less its handler's time (never below 0).
    assert app.us == pytest.approx(max(0.0, vm_cell.inside.cpu_us_per_request - in_app.us))


def test_a_declared_role_with_no_process_is_shown_at_zero_and_engine_daemons_are_not_on_the_path(run):
    host = next(item for item in journeys(run) if item.key == ("container", "host"))
    assert host.absent_roles == ["proxy"]  # declared by the container setup, no docker-proxy ran
    bridge = next(item for item in journeys(run) if item.key == ("container", "bridge"))
    assert bridge.absent_roles == [] and bridge.dnat_packets == 0


def test_hops_keep_the_path_order_and_each_interface_goes_to_the_process_it_leads_to(run):
    bridge = next(item for item in journeys(run) if item.key == ("container", "bridge"))
    assert [(hop.step, hop.name) for hop in bridge.hops] == [
        ("interface", "lo"), ("process", "proxy"), ("interface", "docker0"), ("interface", "veth1a2b3c4"),
        ("inside", "eth0")]
    crossed = crossed_before(bridge)
    by_kind = {bridge.segments[index].kind: [hop.name for hop in found] for index, found in crossed.items()}
    assert by_kind == {"process": ["lo"], "app": ["docker0", "veth1a2b3c4", "eth0"]}
    assert hop_text(bridge.hops[3]) == "veth 2.0 pkt/340 B"  # a veth by its kind: its name changes every start


def test_the_journey_reads_the_workload_with_the_fewest_connections(run, tmp_path):
    def one_connection_cpu(data):
        with_network_paths(data)
        for trial in data["trials"]:
            if trial["workload"] == "cpu":
                trial["load"]["connections"] = 1
    assert journey_workload(run.cells) == "hello"  # both at 8: the first
    fewer = Run.load(copy_run(tmp_path, one_connection_cpu))
    assert journey_workload(fewer.cells) == "cpu"
    assert hops(run.cell("bare", "default", "hello"))[0].packets_per_request == 2.0


def test_a_run_without_counters_has_no_journey(tmp_path):
    plain = Run.load(copy_run(tmp_path))
    assert journeys(plain) == [] and journey_lines(plain) == []


def test_the_report_has_the_journey_section_with_every_hop(run):
    html = render_report(run, charts={})
    assert 'id="journey"' in html and "The journey of one request" in html
    assert "docker-proxy (published port)" in html and "veth" in html and "eth0 inside" in html
    assert "none ran" in html  # container (host): no docker-proxy, at 0


def test_the_demo_ends_on_the_journey_of_each_layer(run):
    lines = journey_lines(run)
    console = Console(width=200, record=True)
    for line in lines:
        console.print(line)
    text = console.export_text()
    assert "The journey of one request (hello, 8 connections)" in text
    assert "container (bridge)" in text and "docker-proxy" in text and "via lo 2.0 pkt/356 B" in text
    assert "docker-proxy none" in text  # the host-network container ran none


def test_bench_demo_ends_on_the_journey_screen(tmp_path, monkeypatch):
    """The demo through the real runner and CLI, every setup stood in for: its last lines are the journey."""
    import bench.runner.measure
    from tests.stand_ins import bench_ok, standing_in

    monkeypatch.setattr(bench.runner.measure, "quiet_for", lambda duration_s: 0.0)  # the stand-ins' load takes no time: nor should this
    with standing_in(monkeypatch):
        printed = bench_ok("demo", "--fast", "--out", str(tmp_path))
    journey = printed[printed.index("The journey of one request"):]
    assert "(hello, 8 connections)" in journey and "via lo" in journey and "bare" in journey, printed
    # Which segments a layer shows depends on the CPU the stand-ins' processes happened to use in their
    # 0.12 s windows (none on a loaded machine); the segments are tested with fixed figures above.
    assert "vm (tcg)" in journey and "container (bridge)" in journey, printed


def test_a_guest_counting_more_cpu_for_the_app_than_qemu_used_is_capped_and_said(tmp_path):
    """The guest's clock runs while its vCPU waits for the host: the app's own count can exceed all of
    QEMU's host CPU. The app is then drawn at QEMU's whole CPU, QEMU's remainder at 0, and the label
    says by how much the guest's count was over, so nothing is attributed twice."""
    def inflated(data):
        with_network_paths(data)
        for trial in data["trials"]:
            if trial["setup"] == "vm" and trial.get("inside"):
                trial["inside"]["cpu_user_s"] = trial["inside"].get("cpu_user_s", 0) * 50 + 5.0

    run = Run.load(copy_run(tmp_path, inflated))
    vm = next(item for item in journeys(run) if item.key[0] == "vm")
    cell = run.cell(*vm.key, vm.workload)
    whole = cell.roles["hypervisor"].cpu_user_us_per_request + cell.roles["hypervisor"].cpu_sys_us_per_request
    assert cell.inside.cpu_us_per_request > whole
    qemu = next(segment for segment in vm.segments if segment.role == "hypervisor")
    app = next(segment for segment in vm.segments if segment.kind == "app")
    in_app = next(segment for segment in vm.segments if segment.kind == "in_app")
    assert qemu.us == 0 and "nothing left: the guest counted" in qemu.label
    assert app.us == pytest.approx(max(0.0, whole - in_app.us))  # the app's share: at most QEMU's whole CPU
