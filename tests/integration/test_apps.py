"""Apps other than layerbench's own, in every layer, for real: nginx from the host's package, and a
user's image built here (busybox's httpd imported FROM scratch), run as a bare chrooted process, as a
container and as a VM's root filesystem. Nothing may be left behind."""

from __future__ import annotations

import http.client
import io
import os
import shutil
import tarfile
from pathlib import Path

import psutil
import pytest

from bench.apps.base import LEFTOVER_ENV
from bench.apps.image import ImageApp
from bench.apps.nginx import NginxApp
from bench.errors import SetupError
from bench.images import cache_root
from bench.images.initramfs import find_busybox
from bench.results import load_run
from bench.runner import Runner
from bench.scenario import parse_scenario
from bench.setups import registry
from bench.setups.base import Pinning
from bench.setups.container import engine
from bench.setups.vm.qemu import NAME_PREFIX
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.qemu]

CGI = b'#!/bin/sh\necho "Content-Type: text/plain"\necho\n/bin/busybox id -u\n/bin/busybox pwd\necho "$GREETING"\n'
INSIDE = b"65534\n/www/cgi-bin\nhi-from-the-image\n"  # its user, its working directory's child, its environment


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _tarball() -> bytes:
    """busybox, a page and a CGI script that says who runs it: a FROM-scratch image's whole root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        def add(name: str, data: bytes | None = None, mode: int = 0o644, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type, mode = tarfile.DIRTYPE, 0o755
            info.mode, info.size = mode, len(data or b"")
            archive.addfile(info, io.BytesIO(data) if data else None)

        for folder in ("bin", "etc", "www", "www/cgi-bin"):
            add(folder)
        add("bin/busybox", find_busybox().read_bytes(), 0o755)
        add("bin/sh", link="busybox")
        add("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("www/index.html", b"<p>hello from busybox httpd</p>\n")
        add("www/cgi-bin/id", CGI, 0o755)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def httpd_image():
    """A user's image, built locally and removed afterwards (with the root filesystem layerbench extracted)."""
    require(engine.unavailable_reason() is None, f"no Docker: {engine.unavailable_reason()}")
    require(find_busybox() is not None, "busybox-static is not installed")
    require(os.geteuid() == 0, "bare for an image chroots, which needs root")
    client = engine.docker_sdk().from_env(timeout=120)
    tag = f"layerbench-test/httpd:{os.getpid()}"
    client.api.import_image(src=_tarball(), repository=tag.split(":")[0], tag=tag.split(":")[1], changes=[
        "USER 65534", "EXPOSE 8080/tcp", "ENV GREETING=hi-from-the-image", "WORKDIR /www",
        'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]'])
    image_id = client.images.get(tag).id
    try:
        yield tag
    finally:
        client.images.remove(tag, force=True)
        client.close()
        shutil.rmtree(cache_root() / "image-rootfs" / image_id.removeprefix("sha256:")[:32], ignore_errors=True)


def _leftovers(run_id: str) -> list[str]:
    """Anything of ours still running: containers of the run, QEMUs and bare apps started by this process."""
    found = []
    with engine.client_if_daemon(30) as client:
        found += [c.name for c in client.containers.list(all=True, filters={"label": f"{engine.RUN_LABEL}={run_id}"})]
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if any(arg.startswith(f"{NAME_PREFIX}{os.getpid()}-") for arg in cmdline):
            found.append(f"qemu {process.pid}")
        try:
            if process.pid != os.getpid() and process.environ().get(LEFTOVER_ENV, "").startswith(f"{os.getpid()} "):
                found.append(f"bare app {process.pid}")
        except psutil.Error:
            pass
    return found


def _require_vm() -> None:
    reason = registry.get("vm").check()
    require(reason is None, f"vm setup unavailable: {reason}")


def test_a_users_image_runs_in_all_three_layers_through_a_scenario_and_leaves_nothing(httpd_image, tmp_path):
    _require_vm()
    scenario = parse_scenario(f"""
name: image
app: {{image: '{httpd_image}', path: /index.html}}
setups: [bare, {{container: {{network: bridge}}}}, {{vm: {{accel: tcg}}}}]
workloads: [{{name: hello, endpoint: hello, connections: 2, duration: 1, warmup: 0.3}}]
repeat: 1
""")
    run_dir = Runner(scenario, tmp_path).run()
    record = load_run(run_dir)
    assert record.status == "complete" and not record.skipped, record.skipped
    assert sorted((t.setup, t.status, t.app) for t in record.trials) == [  # one round, in a shuffled order
        ("bare", "ok", httpd_image), ("container", "ok", httpd_image), ("vm", "ok", httpd_image)]
    assert all(t.load.requests > 0 and t.load.path == "/index.html" and t.inside is None for t in record.trials)
    bare = next(layer for layer in record.layers if layer.setup == "bare")
    assert bare.app == httpd_image and "chroot" in bare.explanation and any("chroot" in c for c in bare.caveats)
    assert _leftovers(record.run_id) == []
    kept = {path.name for path in (run_dir / "work").glob("*")}  # the VM's console log is kept with the run
    assert all(name.startswith("vm-") and name.endswith("-serial.log") for name in kept), kept


@pytest.mark.parametrize("setup, options", [("bare", {}), ("container", {"network": "bridge"}), ("vm", {"accel": "tcg"})])
def test_a_users_image_runs_as_its_own_user_with_its_environment(httpd_image, tmp_path, setup, options):
    if setup == "vm":
        _require_vm()
    app = ImageApp(httpd_image, path="/index.html")
    app.prepare()
    run_id = f"img-{os.getpid()}"
    layer = registry.get(setup)(options, Pinning.default(), run_id, tmp_path, app=app)
    layer.prepare()
    with layer.running() as instance:
        assert _get(instance.port, "/index.html") == (200, b"<p>hello from busybox httpd</p>\n")
        assert _get(instance.port, "/cgi-bin/id") == (200, INSIDE)
        users = {rp.process.uids().real for rp in instance.processes() if rp.role == "app"}
        assert users <= {65534}  # bare and container: the image's user on the host too (the VM: QEMU)
    assert _leftovers(run_id) == []


def test_an_image_that_is_not_here_is_refused_with_a_clear_reason_before_anything_is_stored(tmp_path):
    require(engine.unavailable_reason() is None, f"no Docker: {engine.unavailable_reason()}")
    scenario = parse_scenario("name: absent\napp: {image: 'layerbench-test/absent:0', port: 8080}\n"
                              "setups: [bare, container]\nworkloads: [hello]\nrepeat: 1\n")
    with pytest.raises(SetupError, match="^image layerbench-test/absent:0 is not present locally and layerbench "
                                         "never pulls"):
        Runner(scenario, tmp_path / "results").run()
    assert not (tmp_path / "results").exists()  # no run of 0 trials claiming to be complete


@pytest.mark.parametrize("setup, options", [("bare", {}), ("container", {"network": "bridge"}),
                                            ("container", {"network": "host"}), ("vm", {"accel": "tcg"})])
def test_nginx_serves_its_reply_and_its_file_in_every_layer_as_nobody(tmp_path, setup, options):
    require(NginxApp.check() is None, str(NginxApp.check()))
    reason = registry.get(setup).check()
    require(reason is None, f"{setup} unavailable: {reason}")
    run_id = f"nginx-{os.getpid()}"
    layer = registry.get(setup)(options, Pinning.default(), run_id, tmp_path, app=NginxApp())
    layer.prepare()
    with layer.running() as instance:
        assert _get(instance.port, "/hello") == (200, b"hello\n")
        status, page = _get(instance.port, "/static.html")
        assert status == 200 and len(page) == 4096
        assert instance.stats_path is None and instance.ready_path == "/hello"
        processes = [rp.process for rp in instance.processes() if rp.role == "app"]
        if setup != "vm":
            assert len(processes) == 2 and {p.uids().real for p in processes} == {65534}  # master and one worker
    assert _leftovers(run_id) == [] and not list(Path(tmp_path).glob("bare-*.log"))


def test_nginx_through_the_runner_records_generator_cpu_and_needs_no_stats(tmp_path):
    require(NginxApp.check() is None, str(NginxApp.check()))
    scenario = parse_scenario("name: n\napp: nginx\nsetups: [bare, {container: {network: host}}]\n"
                              "workloads: [{name: hello, endpoint: hello, connections: 4, duration: 1, warmup: 0.3},"
                              " {name: static, endpoint: static, connections: 4, duration: 1, warmup: 0.3}]\n"
                              "repeat: 1\n")
    record = load_run(Runner(scenario, tmp_path).run())
    ok = [t for t in record.trials if t.status == "ok"]
    assert len(ok) == len(record.trials) == 4, [t.error for t in record.trials]
    for trial in ok:
        assert trial.app == "nginx" and trial.inside is None and trial.load.errors == {}
        assert trial.load.generator_stats.cpu_s > 0 and trial.load.path in ("/hello", "/static.html")
    assert _leftovers(record.run_id) == []


def test_a_killed_runner_takes_bare_nginx_master_and_worker_with_it(tmp_path):
    """SIGKILL of the runner: nginx's master gets SIGTERM from the kernel and stops its worker (a
    SIGKILLed master would leave the worker serving, and nginx wipes the environment a marker needs)."""
    require(NginxApp.check() is None, str(NginxApp.check()))
    import signal
    import subprocess
    import sys
    import time

    scenario = tmp_path / "nginx.yaml"
    scenario.write_text("name: killed\napp: nginx\nsetups: [bare]\n"
                        "workloads: [{name: hello, endpoint: hello, duration: 30, warmup: 0.2}]\nrepeat: 1\n")
    runner = subprocess.Popen([str(Path(sys.executable).with_name("bench")), "run", str(scenario), "--out",
                               str(tmp_path / "out"), "--no-report"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def nginx() -> list[psutil.Process]:
        try:
            return [p for p in psutil.Process(runner.pid).children(recursive=True) if p.name() == "nginx"]
        except psutil.Error:
            return []

    give_up = time.monotonic() + 90
    while len(nginx()) < 2 and time.monotonic() < give_up:
        time.sleep(0.1)
    processes = nginx()
    assert len(processes) == 2, "nginx's master and worker did not start"
    import tempfile

    [folder] = Path(tempfile.gettempdir()).glob(f"layerbench-host-{runner.pid}-nginx-*")  # its config, pid file
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    gone, alive = psutil.wait_procs(processes, timeout=15)
    assert alive == [], f"left behind: {alive}"
    # Its folder outlives it (a killed runner removes nothing); clean removes folders of dead runners.
    from bench.scratch import clean_stale

    assert folder.is_dir() and f"stale folder {folder}" in clean_stale() and not folder.exists()


def test_clean_finds_a_bare_app_of_a_dead_runner_by_its_marker_and_narrows_to_its_run():
    """A process a bare app started outlives the app (a shell entrypoint's server, say): the marker
    in its environment names the runner and the run, so clean finds it, and only its run's."""
    import subprocess
    import time

    dead = subprocess.Popen(["true"])
    dead.wait()  # a runner pid that no longer exists
    env = {**os.environ, LEFTOVER_ENV: f"{dead.pid} run-of-a-dead-runner"}
    subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 &"], env=env, check=True)  # orphaned at once
    give_up = time.monotonic() + 10
    orphan = None
    while orphan is None and time.monotonic() < give_up:
        orphan = next((p for p in psutil.process_iter(["ppid", "cmdline"]) if p.info["cmdline"] == ["sleep", "60"]
                       and _marker(p) == env[LEFTOVER_ENV]), None)
        time.sleep(0.05)
    assert orphan is not None
    bare = registry.get("bare")
    try:
        require(orphan.ppid() == 1, "orphans here are adopted by a subreaper, not init")
        assert f"bare app pid {orphan.pid}" in bare.find_leftovers()
        assert f"bare app pid {orphan.pid}" not in bare.clean_leftovers("some-other-run")
        assert f"bare app pid {orphan.pid}" in bare.clean_leftovers("run-of-a-dead-runner")
        orphan.wait(timeout=5)
    finally:
        if orphan.is_running():
            orphan.kill()


def _marker(process: psutil.Process) -> str | None:
    try:
        return process.environ().get(LEFTOVER_ENV)
    except psutil.Error:
        return None
