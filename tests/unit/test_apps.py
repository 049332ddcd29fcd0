"""The app as a scenario dimension, without engines: the contract, validation, planning, records,
the model keyed by app, and the pieces every layer asks an app for."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from bench import results
from bench.apps import registry
from bench.apps.image import ImageApp
from bench.apps.nginx import NginxApp, config, static_page
from bench.apps.python import PythonApp
from bench.errors import ScenarioError, SetupError
from bench.images.exported import parse_config, resolve_user
from bench.model import Run
from bench.runner.plan import plan
from bench.scenario import parse_scenario
from bench.vocabulary import cell_label, label
from tests.conftest import require

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _scenario(head: str, workloads: str = "[hello]") -> str:
    return f"name: t\n{head}\nsetups: [bare, container]\nworkloads: {workloads}\n"


def test_the_registry_knows_the_three_apps_and_what_each_serves():
    assert registry.kinds() == ["image", "nginx", "python"]
    assert PythonApp().url_path("cpu", 1000) == "/cpu?n=1000" and PythonApp().url_path("hello") == "/hello"
    assert set(PythonApp().endpoints) == {"hello", "cpu", "mem", "io", "json"}
    nginx = NginxApp()
    assert set(nginx.endpoints) == {"hello", "static"} and nginx.url_path("static") == "/static.html"
    assert (PythonApp.ready_path, PythonApp.stats_path) == ("/health", "/stats")
    assert nginx.stats_path is None  # no inside view: every /stats caller must do without
    image = ImageApp("me/api:1", port=9000, path="/ping", ready="/healthz")
    assert image.name == "me/api:1" and image.url_path("hello") == "/ping" and image.ready_path == "/healthz"
    assert ImageApp("me/api:1").ready_path == "/"  # ready defaults to path
    with pytest.raises(SetupError, match="unknown app 'tomcat'"):
        registry.get("tomcat")


def test_a_scenario_takes_one_app_or_several_and_python_by_default():
    assert [spec.key for spec in parse_scenario(_scenario("")).app_specs] == ["python"]
    assert [spec.key for spec in parse_scenario(_scenario("app: nginx")).app_specs] == ["nginx"]
    both = parse_scenario(_scenario("apps: [python, nginx]"))
    assert [spec.key for spec in both.app_specs] == ["python", "nginx"]
    image = parse_scenario(_scenario("app: {image: 'me/api:1', port: 9000, path: /ping}")).app_specs[0]
    assert (image.name, image.key, image.port, image.path) == ("image", "me/api:1", 9000, "/ping")
    # What a run stores validates again (resume).
    again = type(both).model_validate(json.loads(both.model_dump_json()))
    assert [spec.key for spec in again.app_specs] == ["python", "nginx"]


@pytest.mark.parametrize("head, workloads, words", [
    ("app: nginx", "[cpu]", "workload 'cpu': app nginx does not serve endpoint 'cpu' (it serves: hello, static)"),
    ("apps: [python, nginx]", "[hello, json]", "app nginx does not serve endpoint 'json'"),
    ("app: {image: 'me/api:1'}", "[static]", "app me/api:1 does not serve endpoint 'static' (it serves: hello)"),
    ("app: tomcat", "[hello]", "app: unknown app 'tomcat'; choose from: nginx, python, or {image: NAME:TAG"),
    ("app: image", "[hello]", "an image app needs image: NAME:TAG (a local image; nothing is pulled)"),
    ("app: {name: nginx, port: 80}", "[hello]", "a shipped app takes none"),
    ("app: {image: 'bad name'}", "[hello]", "app.image: image must be a local image reference"),
    ("app: {image: 'a:b', path: ping}", "[hello]", "app.path: must be a URL path starting with /"),
    ("app: {image: 'a:b', port: 70000}", "[hello]", "app.port: Input should be less than or equal to 65535"),
    ("app: nginx\napps: [python]", "[hello]", "give either app (one app) or apps (a list), not both"),
    ("apps: [nginx, nginx]", "[hello]", "apps must be unique; repeated: nginx"),
])
def test_an_app_problem_is_one_line_before_anything_starts(head, workloads, words):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_scenario(head, workloads))
    assert len(caught.value.lines) == 1 and words in caught.value.lines[0], caught.value.lines


def test_startup_and_idle_need_no_endpoint_so_every_app_takes_them():
    scenario = parse_scenario(_scenario("app: nginx", "[startup, idle, {name: page, endpoint: static}]"))
    assert [w.name for w in scenario.workloads] == ["startup", "idle", "page"]


def test_the_plan_interleaves_apps_names_them_and_asks_each_app_for_its_paths():
    scenario = parse_scenario("name: t\napps: [python, nginx]\nsetups: [bare, container]\n"
                              "workloads: [hello, startup]\nrepeat: 2\n")
    pairs = [(spec.build(), setup) for spec in scenario.app_specs for setup in scenario.setups]
    starts = plan(scenario, pairs, 2)
    first_round = [group[0] for group in starts[:len(starts) // 2]]
    assert {trial.app for trial in first_round} == {"python", "nginx"} and {t.repeat for t in first_round} == {0}
    trials = [trial for group in starts for trial in group]
    ids = [trial.trial_id for trial in trials]
    assert len(set(ids)) == len(ids)
    assert "nginx--container--hello--r1" in ids and "python--bare--startup--r0" in ids
    assert "nginx:container/hello/r1" in {trial.key for trial in trials}
    assert {trial.workload.url_path for trial in trials if trial.workload.name == "hello"} == {"/hello"}
    single = parse_scenario("name: t\nsetups: [bare]\nworkloads: [{name: c, endpoint: cpu, param: 7}]\n")
    [[trial]] = plan(single, [(single.app_specs[0].build(), single.setups[0])], 1)
    assert trial.trial_id == "bare--c--r0" and trial.app == "python"  # one app: ids as before apps
    assert trial.workload.url_path == "/cpu?n=7"


@pytest.mark.parametrize("version", [2, 3, 4])
def test_a_frozen_run_of_an_older_format_loads_as_the_python_app(version):
    fixture = FIXTURES / f"v{version}_run"
    assert json.loads((fixture / "run.json").read_text())["format_version"] == version  # frozen: never rewritten
    record = results.load_run(fixture)
    assert record.format_version == results.FORMAT_VERSION
    assert all(layer.stack_layers for layer in record.layers)  # the layer-stack boxes its setups had (format 5)
    assert {trial.app for trial in record.trials} == {"python"} and {layer.app for layer in record.layers} == {"python"}
    run = Run(record, fixture)
    assert run.apps == ["python"] and not run.multi_app
    assert run.layer_keys[0] == ("bare", "default")  # a run of one app never names it
    assert run.cells[0].label == "bare" and run.overhead and all(row.label == label(row.setup, row.variant)
                                                                  for row in run.overhead)


def _two_apps(tmp_path: Path) -> Run:
    """The v2 fixture's trials as the python app plus a copy as nginx: 4x the throughput, a quarter of the CPU."""
    data = json.loads((FIXTURES / "v2_run" / "run.json").read_text())
    copies = []
    for trial in data["trials"]:
        copy = json.loads(json.dumps(trial))
        copy["app"], copy["trial_id"] = "nginx", "nginx--" + trial["trial_id"]
        copy["load"]["throughput_rps"] *= 4
        copy["cpu_us_per_request"] = {part: value / 4 for part, value in trial["cpu_us_per_request"].items()}
        copies.append(copy)
    data["trials"] += copies
    data["layers"] += [{**layer, "app": "nginx"} for layer in data["layers"]]  # a run describes each app's layers
    data["scenario"]["apps"] = [{"name": "python"}, {"name": "nginx"}]
    (tmp_path / "run.json").write_text(json.dumps(data))
    return Run.load(tmp_path)


def test_a_run_of_two_apps_keys_cells_by_app_and_compares_each_with_its_own_baseline(tmp_path):
    run = _two_apps(tmp_path)
    assert run.apps == ["python", "nginx"] and run.multi_app
    assert len(run.cells) == 8 and len({cell.key for cell in run.cells}) == 8
    bare_nginx = run.cell("bare", "default", "hello", "nginx")
    assert bare_nginx.label == "nginx · bare" and bare_nginx.subject == "nginx · bare / hello"
    assert ("vm", "tcg", "nginx") in run.layer_keys and run.layer_keys[0] == ("bare", "default", "python")
    for row in (o for o in run.overhead if o.metric == "throughput_rps"):
        mine = run.cell(row.setup, row.variant, row.workload, row.app).median("throughput_rps")
        base = run.cell("bare", "default", row.workload, row.app).median("throughput_rps")
        assert row.ratio.median == pytest.approx(mine / base)  # the same app's bare, never the other's
        assert row.label.startswith(f"{row.app} · ")
    [bridge] = [r for r in run.by_app if (r.setup, r.variant) == ("container", "bridge")]
    python, nginx = bridge.entries
    assert (python.app, nginx.app) == ("python", "nginx")
    assert python.base_cpu_us == pytest.approx(4 * nginx.base_cpu_us)
    assert 0 < python.layer_share < 1 and python.added_cpu_us > nginx.added_cpu_us


def test_labels_name_the_app_only_when_given():
    assert label("container", "bridge") == "container (bridge)"
    assert label("container", "bridge", "nginx") == "nginx · container (bridge)"
    assert cell_label("vm", "tcg", "hello", "me/api:1") == "me/api:1 · vm (tcg) / hello"


def test_nginx_config_is_one_worker_no_access_log_and_everything_under_its_folder():
    text = config("0.0.0.0:8080", "/tmp", "/srv/www")
    assert "worker_processes 1;" in text and "access_log off;" in text and "daemon off;" in text
    assert "listen 0.0.0.0:8080;" in text and "pid /tmp/nginx.pid;" in text
    assert all(f"{kind}_temp_path /tmp/{kind};" in text for kind in ("client_body", "proxy", "fastcgi"))
    assert "location = /static.html { root /srv/www; }" in text and "user " not in text
    assert len(static_page()) == 4096 and static_page().startswith(b"<!doctype html>")


def test_nginx_in_a_container_renders_its_config_only_for_another_address():
    from bench.apps.base import ContainerImage, Layer, Place

    image = ContainerImage(tag="t", image_id="i", size_bytes=1)
    plain = NginxApp().start(Place(Layer.CONTAINER, "0.0.0.0", 8080, files=image))
    assert plain.argv == ["/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf", "-e", "stderr"]
    assert (plain.user, plain.read_only_root, plain.stop_signal) == ((65534, 65534), True, signal.SIGTERM)
    host = NginxApp().start(Place(Layer.CONTAINER, "127.0.0.1", 41000, files=image))
    assert host.argv[:3] == ["/bin/busybox", "sh", "-c"] and host.argv[-1] == "127.0.0.1:41000"
    assert "exec /usr/sbin/nginx -c /tmp/nginx.conf" in host.argv[3]


def test_an_image_config_is_read_as_docker_reads_it():
    attrs = {"Id": "sha256:" + "ab" * 32, "Size": 123, "Config": {
        "Entrypoint": ["/bin/busybox"], "Cmd": ["httpd", "-f"], "User": "65534", "Env": ["GREETING=a=b"],
        "WorkingDir": "", "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}}}
    config = parse_config("me/httpd:1", attrs)
    assert config.argv == ["/bin/busybox", "httpd", "-f"] and config.ports == (8080,)
    assert config.env["GREETING"] == "a=b" and config.env["PATH"].startswith("/usr/local/sbin")
    assert (config.workdir, config.size_bytes) == ("/", 123)


def test_an_image_user_is_resolved_in_its_own_passwd_and_group(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    assert resolve_user(tmp_path, "") == (0, 0)
    assert resolve_user(tmp_path, "app") == (1000, 1001) and resolve_user(tmp_path, "1000") == (1000, 1001)
    assert resolve_user(tmp_path, "65534") == (65534, 0)  # not in passwd: group 0, as Docker does
    assert resolve_user(tmp_path, "app:staff") == (1000, 50) and resolve_user(tmp_path, "7:8") == (7, 8)
    with pytest.raises(SetupError, match="'ghost' is not in its /etc/passwd"):
        resolve_user(tmp_path, "ghost")


def test_an_image_asks_for_its_port_when_it_exposes_none_or_several(monkeypatch):
    from bench.images import exported

    for ports, words in (((), "exposes no port"), ((80, 8080), r"exposes ports \[80, 8080\]")):
        app = ImageApp("me/httpd:1")
        monkeypatch.setattr(exported, "inspect_image",
                            lambda ref, client=None, ports=ports: parse_config(ref, {"Config": {
                                "Cmd": ["x"], "ExposedPorts": {f"{p}/tcp": {} for p in ports}}}))
        with pytest.raises(SetupError, match=words):
            app.prepare()
    assert ImageApp("me/httpd:1", port=9000).port == 9000  # given: no need to look


def test_bare_nginx_runs_from_a_folder_of_its_own_as_nobody():
    require(os.geteuid() == 0, "root: nginx runs as nobody only when started as root")
    from bench.apps.base import Layer, Place

    start = NginxApp().start(Place(Layer.HOST, "127.0.0.1", 41001))
    try:
        assert start.argv[0] == "/usr/sbin/nginx" and start.port == 41001 and start.user == (65534, 65534)
        assert start.scratch.stat().st_uid == 65534 and (start.scratch / "www" / "static.html").stat().st_size == 4096
        assert "listen 127.0.0.1:41001;" in (start.scratch / "nginx.conf").read_text()
    finally:
        import shutil

        shutil.rmtree(start.scratch)


def test_a_noisy_ratio_whose_interval_reaches_zero_still_gets_words():
    from bench.stats import Estimate
    from bench.figures import verdict

    assert verdict("throughput_rps", Estimate(0.2, 0.0, 0.5, n=3), "worse", 0.05) == "5.0x slower (interval 2.0x..infx)"


def test_every_output_of_a_two_app_run_names_the_app_and_keeps_the_apps_apart(tmp_path):
    from bench import gate
    from bench.compare import compare
    from bench.outputs.export import csv as csv_export
    from bench.outputs.export import markdown
    from bench.outputs.live import bars_table
    from bench.outputs.terminal import by_app_table
    from rich.console import Console

    run = _two_apps(tmp_path)
    assert "| nginx · container (bridge) | hello |" in markdown.run_text(run)
    lines = csv_export.run_text(run).splitlines()
    assert lines[0].split(",")[:4] == ["run_id", "setup", "variant", "app"]
    assert any('"container","bridge","nginx","nginx · container (bridge)","hello",' in line for line in lines)
    console = Console(width=200, record=True)
    console.print(bars_table(run, run.prepared_layers, ["hello"]))
    console.print(by_app_table(run))
    shown = console.export_text()
    assert "nginx · vm (tcg)" in shown and "python · vm (tcg)" in shown and "the same layer, each app" in shown
    comparison = compare([run, Run.load(tmp_path)])
    assert {row.app for row in comparison.rows} == {"python", "nginx"}
    result = gate.check(comparison, gate.parse_thresholds("throughput_rps:-10%"))
    assert result.passed and result.checked == 8  # the same run twice, both apps judged: nothing moved
