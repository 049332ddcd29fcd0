"""Hostile input: malformed scenario files, absurd flags, corrupt results, and hostile HTTP clients.

Each must end in our own error type and one clear message (never a traceback), and the app must
answer a hostile request with a 4xx or a close while it keeps serving everyone else.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench import results
from bench.app.server import Handler
from bench.cli import app
from bench.load.builtin import LoadSpec, run_load
from bench.scenario import ScenarioError, load_scenario, parse_scenario
from tests.conftest import require, serve_app

runner = CliRunner()
GOOD = "name: t\nsetups: [bare]\nworkloads: [hello]\n"

HOSTILE_SCENARIOS = {
    "not a mapping": "- just\n- a list\n",
    "wrong types": "name: 5\nsetups: bare\nworkloads: {hello: 1}\nrepeat: many\n",
    "unknown keys": GOOD + "repeats: 3\nsetup: [vm]\n",
    "unknown workload key": "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: hello, turbo: true}]\n",
    "huge numbers": "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: cpu, param: 99999999999999999999,"
                    " connections: 10000000, duration: 1e300}]\nrepeat: 100000000000\n",
    "integer of 5000 digits": GOOD + "seed: " + "9" * 5000 + "\n",
    "negative durations": "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: hello, duration: -1, warmup: -5}]\n",
    "zero duration": "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: hello, duration: 0}]\n",
    "nan and inf": "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: hello, duration: .nan, warmup: .inf}]\n",
    "path separators in the name": "name: ../../etc/x\nsetups: [bare]\nworkloads: [hello]\n",
    "absolute path name": "name: /tmp/x\nsetups: [bare]\nworkloads: [hello]\n",
    "html in the name": "name: '<script>alert(1)</script>'\nsetups: [bare]\nworkloads: [hello]\n",
    "rich markup in the name": "name: '[/x]'\nsetups: [bare]\nworkloads: [hello]\n",
    "path in a workload name": "name: t\nsetups: [bare]\nworkloads: [{name: ../w, endpoint: hello}]\n",
    "unknown setup": "name: t\nsetups: [hyperv, '../bare']\nworkloads: [hello]\n",
    "bad setup options": "name: t\nsetups: [{container: {network: [1, 2], privileged: true}}]\nworkloads: [hello]\n",
    "deep nesting": "name: t\nsetups: " + "[" * 5000 + "]" * 5000 + "\n",
    "self-referencing alias": "name: t\nsetups: &a [*a]\nworkloads: [hello]\n",
    "python tag": "name: !!python/object/apply:os.system ['touch /tmp/pwned']\nsetups: [bare]\nworkloads: [hello]\n",
    "not yaml": "name: [unclosed\n",
    "control characters": "\x00\x1f",
    "empty": "",
    "description too long": GOOD + "description: " + "x" * 5000 + "\n",
    "a setup twice": "name: t\nsetups: [bare, bare]\nworkloads: [hello]\n",
    "a variant twice, once by its defaults": "name: t\nsetups: [container, {container: {network: bridge}}]\n"
                                             "workloads: [hello]\n",
    "two variants that share a folder name": "name: t\nsetups: [{container: {base_image: 'a:b'}}, "
                                             "{container: {base_image: a-b}}]\nworkloads: [hello]\n",
    "a density count twice": "name: t\nsetups: [bare]\nworkloads: [{name: d, kind: density, instances: [1, 1]}]\n",
    "too many workloads": "name: t\nsetups: [bare]\nworkloads: [" + ", ".join(
        f"{{name: w{i}, endpoint: hello}}" for i in range(100)) + "]\n",
}


@pytest.mark.parametrize("text", list(HOSTILE_SCENARIOS.values()), ids=list(HOSTILE_SCENARIOS))
def test_hostile_scenarios_raise_scenario_error_with_one_line_per_problem(text):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "hostile.yaml")
    assert caught.value.problems
    for problem in caught.value.problems:
        assert problem.startswith("hostile.yaml") and "\n" not in problem and len(problem) < 400, problem


def test_an_unreadable_scenario_path_is_a_scenario_error(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "latin1.yaml").write_bytes(b"name: \xff\xfe\n")
    for path in (tmp_path / "dir.yaml", tmp_path / "latin1.yaml", tmp_path / "missing.yaml"):
        with pytest.raises(ScenarioError):
            load_scenario(str(path))


@pytest.mark.parametrize("name", ["path separators in the name", "html in the name", "rich markup in the name",
                                  "deep nesting", "python tag", "huge numbers", "integer of 5000 digits"])
def test_bench_run_on_a_hostile_file_exits_1_with_a_message_and_writes_nothing(tmp_path, name):
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(HOSTILE_SCENARIOS[name])
    before = sorted(tmp_path.rglob("*"))
    outcome = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "results"), "--no-report"])
    assert outcome.exit_code == 1, outcome.output
    assert isinstance(outcome.exception, SystemExit)  # not a traceback
    assert "error:" in outcome.output and "Traceback" not in outcome.output
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, inside the results folder or outside
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("flags,named", [(["--setups", "bare,bare"], "repeated: bare"),
                                        (["--setups", "bare,container,bare"], "repeated: bare")])
def test_a_setup_named_twice_on_the_command_line_is_refused_naming_it(tmp_path, flags, named):
    outcome = runner.invoke(app, ["run", *flags, "--workloads", "hello", "--out", str(tmp_path / "r"), "--no-report"])
    assert outcome.exit_code == 1, outcome.output
    (line,) = outcome.output.strip().splitlines()
    assert line.startswith("error: ") and named in line, line
    assert not (tmp_path / "r").exists()


def test_rich_markup_in_a_description_is_printed_not_interpreted(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: t\ndescription: '[/x] [bold]<b>'\nsetups: [bare]\n"
                        "workloads: [{name: w, endpoint: hello, duration: 0.2, warmup: 0}]\n"
                        "pinning: {app_cpus: [4000], load_cpus: [0]}\n")  # valid, but no such CPU here
    outcome = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "results"), "--no-report"])
    assert isinstance(outcome.exception, SystemExit), outcome.output
    assert "[/x] [bold]<b>" in outcome.output
    assert outcome.exit_code == 1 and "pinning names CPUs [4000]" in outcome.output


@pytest.mark.parametrize("flags", [["--duration", "-1"], ["--duration", "0"], ["--duration", "nan"],
                                   ["--duration", "inf"], ["--warmup", "-1"], ["--connections", "100000"],
                                   ["--connections", "0"], ["--repeat", "0"], ["--repeat", "-3"],
                                   ["--repeat", "10000000000000000000000"], ["--setups", "../x"],
                                   ["--workloads", "<b>"], ["--setups", ","], ["--workloads", " , "]],
                         ids=lambda flags: " ".join(flags))
def test_absurd_flags_exit_non_zero_with_a_message(tmp_path, flags):
    outcome = runner.invoke(app, ["run", "--setups", "bare", *flags, "--out", str(tmp_path / "r"), "--no-report"])
    assert outcome.exit_code in (1, 2), outcome.output  # 2: the usage error Click gives for a range
    assert isinstance(outcome.exception, SystemExit) and "Traceback" not in outcome.output
    assert "error" in outcome.output.lower()
    assert not (tmp_path / "r").exists() or list((tmp_path / "r").iterdir()) == []


# ---- scenario input bounded in memory and time --------------------------------------------------

def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Each level lists `width` aliases of the level below: width**levels values once expanded."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return GOOD + "\n".join(lines) + "\n"


def _fifo_without_writer(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "silent.yaml")
    return tmp_path / "silent.yaml"


def _fifty_megabytes(tmp_path: Path) -> Path:
    path = tmp_path / "big.yaml"  # real YAML, as a generated or concatenated file would be
    path.write_bytes(GOOD.encode() + b"extra:\n" + b"  - {name: w, endpoint: hello, duration: 1}\n" * 1_200_000)
    return path


BOUNDED_FILES = {
    "alias bomb, 9 levels": (lambda tmp_path: _write(tmp_path, _alias_bomb()), "more than 12000 values"),
    "50 MB scenario": (_fifty_megabytes, "52.8 MB, more than the 256 KiB a scenario may be"),
    "/dev/zero": (lambda tmp_path: Path("/dev/zero"), "/dev/zero: more than the 256 KiB a scenario may be"),
    "FIFO without a writer": (_fifo_without_writer, "cannot read: the input did not end within 0.5 s"),
}


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hostile.yaml").write_text(text)
    return tmp_path / "hostile.yaml"


def _limit_memory() -> None:
    limit = 1 << 30  # 1 GiB of address space: code that reads or expands without bound dies here, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


ANSWER_CPU_S = 2.0  # any input is answered within 2 s ...
ANSWER_RSS_MB = 300  # ... and 300 MB of RSS (tools/hostile_input_check.py prints each figure)


@pytest.mark.parametrize("make,expected", list(BOUNDED_FILES.values()), ids=list(BOUNDED_FILES))
def test_bench_run_answers_a_huge_endless_or_exploding_file_with_one_line(tmp_path, make, expected):
    # The real command line in a child, fenced by an address-space limit and a kill timeout, its own
    # rusage read back (os.wait4): the 2 s bound is on the child's CPU time, which neighbours on a
    # shared machine do not inflate as they do wall time.
    path = make(tmp_path)
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([sys.executable, "-m", "bench", "run", str(path), "--out", str(tmp_path / "results"),
                                  "--no-report"], stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=_limit_memory)
        killer = threading.Timer(60, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)  # reaped here, so its own rusage is ours to read
        finally:
            killer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    cpu_s, rss_mb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    assert child.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr and expected in stderr, stderr[-2000:]
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert cpu_s <= ANSWER_CPU_S and rss_mb <= ANSWER_RSS_MB, f"{cpu_s:.2f} s of CPU, {rss_mb:.0f} MB peak RSS"
    assert not (tmp_path / "results").exists()


def test_scenario_text_past_the_size_limit_is_refused_before_parsing():
    with pytest.raises(ScenarioError, match=r"^big.yaml:\?: 0.3 MB, more than the 256 KiB a scenario may be$"):
        parse_scenario(GOOD + "# padding\n" * 30_000, "big.yaml")


def test_thousands_of_wrong_keys_get_twenty_lines_and_a_count():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(GOOD + "".join(f"k{i}: 1\n" for i in range(5000)), "many.yaml")
    assert len(caught.value.problems) == 21 and caught.value.problems[-1] == "many.yaml:?: and 4980 more problems"


def test_a_duplicate_key_names_the_line_of_each():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(GOOD + "repeat: 2\nrepeat: 3\n", "dup.yaml")
    assert caught.value.problems == ["dup.yaml:5: duplicate key 'repeat' (first at line 4)"]
    with pytest.raises(ScenarioError, match=r"^dup.yaml:3: duplicate key 'name' \(first at line 3\)"):
        parse_scenario("name: t\nsetups: [bare]\nworkloads: [{name: a, endpoint: hello, name: b}]\n", "dup.yaml")


def test_a_yaml_duration_below_the_command_line_minimum_is_refused():
    text = "name: t\nsetups: [bare]\nworkloads: [{name: w, endpoint: hello, duration: %s}]\n"
    with pytest.raises(ScenarioError, match=r"s.yaml:3: workloads.0.duration: duration must be at least 0.1 s"):
        parse_scenario(text % "1e-9", "s.yaml")
    assert parse_scenario(text % "0.1", "s.yaml").workloads[0].duration == 0.1  # the --duration minimum itself
    outcome = runner.invoke(app, ["run", "--setups", "bare", "--duration", "0.09", "--no-report"])
    assert outcome.exit_code == 2 and "0.1" in outcome.output  # the same bound, from the same constant


BOUND_CASES = {
    "alias bomb": (_alias_bomb(), r"^s:8: more than 12000 values, counting each alias as all it stands for$"),
    "merge-key bomb": (GOOD + "m0: &m0 {a: 1, b: 2}\n" + "".join(
        f"m{n}: &m{n} {{x{n}: [*m{n - 1}, *m{n - 1}], <<: *m{n - 1}}}\n" for n in range(1, 20)), r"more than 12000"),
    "300 aliases": (GOOD + "a: &a x\nb: [" + ", ".join(["*a"] * 300) + "]\n", r"^s:5: more than 256 aliases"),
    "alias inside itself": (GOOD + "x: &x {y: [*x]}\n", r"^s:4: alias \*x refers to a value that contains it$"),
    "deep nesting": (GOOD + "x: " + "[" * 40 + "]" * 40 + "\n", r"^s:4: nested more than 32 levels deep$"),
    "duplicate key": (GOOD + "seed: 1\nseed: 2\n", r"^s:5: duplicate key 'seed' \(first at line 4\)$"),
}


@pytest.mark.parametrize("loader", ["BoundedLoader", "FastBoundedLoader"])
@pytest.mark.parametrize("text,expected", list(BOUND_CASES.values()), ids=list(BOUND_CASES))
def test_both_loaders_refuse_what_exceeds_a_bound_with_its_line(loader, text, expected):
    from bench.scenario import bounded_yaml as scenario_yaml

    require(hasattr(scenario_yaml, loader), "PyYAML built with libyaml (its wheels are)")
    with pytest.raises(ScenarioError, match=expected):
        scenario_yaml.load(text, "s", getattr(scenario_yaml, loader))


def test_both_loaders_read_every_shipped_scenario_alike():
    from bench import scenario
    from bench.scenario import bounded_yaml as scenario_yaml

    require(hasattr(scenario_yaml, "FastBoundedLoader"), "PyYAML built with libyaml (its wheels are)")
    for path in scenario.shipped().values():
        text = path.read_text()
        assert scenario_yaml.load(text, "s", scenario_yaml.BoundedLoader)[0] == yaml.safe_load(text)
        assert scenario_yaml.load(text, "s", scenario_yaml.FastBoundedLoader)[0] == yaml.safe_load(text)


def test_the_largest_scenario_the_schema_allows_is_within_the_bounds():
    workloads = [{"name": f"w{i:02d}-" + "x" * 60, "kind": "load", "endpoint": "cpu", "param": 10_000_000,
                  "mode": "open", "connections": 1024, "rate": 1e6, "duration": 3600.0, "warmup": 600.0,
                  "load": "builtin", "instances": list(range(25, 33))} for i in range(64)]
    # Distinct variants (a variant may appear once): 32 memory sizes.
    setups = [{"vm": {"accel": "auto", "memory_mb": 16384 - i, "kernel": "/" + "k" * 200, "vcpus": 64,
                      "release_boot_files": True, "disk": True}} for i in range(32)]
    largest = {"name": "n" * 64, "description": "d" * 2000, "setups": setups, "workloads": workloads,
               "repeat": 1000, "pinning": {"app_cpus": list(range(4096)), "load_cpus": list(range(4096))}}
    text = yaml.safe_dump(largest, default_flow_style=False)
    assert len(parse_scenario(text, "largest.yaml").workloads) == 64


def test_a_validation_error_under_shared_aliases_names_a_line_without_expanding_them():
    text = ("name: t\nsetups: [bare]\nbase: &b {name: w, endpoint: hello}\n"
            "workloads: [&w {<<: *b, turbo: 1}, *w, *w]\n")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    assert "s.yaml:3: base: unknown key (check the spelling; see: bench scenarios --help)" in caught.value.problems
    assert any(problem.startswith("s.yaml:4: workloads.1.turbo: unknown key") for problem in caught.value.problems)


# ---- stored results ---------------------------------------------------------------------------

def _good_record(run_id: str) -> results.RunRecord:
    return results.RunRecord(run_id=run_id, created_at=results.now_iso(), status="complete",
                             scenario={"name": "t"})


BAD_RUN_FILES = {
    "garbage": b"\x00\xff not json",
    "truncated": b'{"format_version": 1, "run_id": "x", "trials": [',
    "future version": json.dumps({"format_version": 99, "run_id": "x", "created_at": "now"}).encode(),
    "version zero": json.dumps({"format_version": 0, "run_id": "x", "created_at": "now"}).encode(),
    "negative version": json.dumps({"format_version": -4, "run_id": "x", "created_at": "now"}).encode(),
    "no version": json.dumps({"run_id": "x"}).encode(),
    "a list": b"[1, 2, 3]",
    "wrong types": json.dumps({"format_version": 1, "run_id": 5, "created_at": [], "trials": "all"}).encode(),
    "bad trial": json.dumps({"format_version": 1, "run_id": "x", "created_at": "now",
                             "trials": [{"trial_id": "t", "status": "exploded"}]}).encode(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "huge integer": b'{"format_version": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("content", list(BAD_RUN_FILES.values()), ids=list(BAD_RUN_FILES))
def test_corrupt_or_future_run_files_give_a_clear_message_and_non_zero_exit(tmp_path, content):
    results.save_run(tmp_path / "good", _good_record("good"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_bytes(content)
    with pytest.raises(results.ResultsError, match="bad/run.json"):
        results.load_run(tmp_path / "bad")
    for command in (["show", "bad", "--results", str(tmp_path)], ["report", "bad", "--results", str(tmp_path)],
                    ["show", str(tmp_path / "bad")]):
        outcome = runner.invoke(app, command)
        assert outcome.exit_code == 1 and isinstance(outcome.exception, SystemExit), (command, outcome.output)
        assert "error:" in outcome.output and "run.json" in outcome.output
    listed = runner.invoke(app, ["list", "--results", str(tmp_path)])
    assert isinstance(listed.exception, SystemExit) and listed.exit_code == 1, listed.output
    assert "good" in listed.output and "unreadable" in listed.output
    if content is BAD_RUN_FILES["future version"]:
        assert "newer than this layerbench reads" in listed.output
    assert not (tmp_path / "bad" / "report.html").exists()


# ---- the app under hostile clients ------------------------------------------------------------

HANDLER_TIMEOUT_S = 1.0  # Handler.timeout (30 s in production), lowered so the test can wait it out


class _ShortTimeoutHandler(Handler):
    timeout = HANDLER_TIMEOUT_S


@pytest.fixture(scope="module")
def hostile_app():
    """The real app, threaded as in production, with the handler timeout lowered to 1 s."""
    with serve_app(_ShortTimeoutHandler) as port:
        yield port


def _exchange(port: int, payload: bytes, timeout_s: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout); everything it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as client:
        try:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused mid-upload and closed: what it said first is still readable
        received = b""
        try:
            while chunk := client.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def _status(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


HOSTILE_REQUESTS = {
    "oversized header": (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", {431, 400}),
    "very many headers": (b"GET /hello HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
                          {431, 400}),
    "oversized request line": (b"GET /hello?" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", {414}),
    "garbage request line": (b"\x00\x01\x02 garbage\r\n\r\n", {400}),
    "too many words": (b"GET /hello HTTP/1.1 extra\r\n\r\n", {400}),
    "bad version": (b"GET /hello HTTP/9.9\r\n\r\n", {400, 505}),
    "lowercase method": (b"get /hello HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405, 501}),
    "huge query number": (b"GET /cpu?n=" + b"9" * 50_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    "negative query number": (b"GET /mem?mb=-1 HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    "unknown parameter": (b"GET /io?kb=1&rm=/ HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    "post with a body": (b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", {405, 501}),
    "post with a huge declared body": (b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nx",
                                       {405, 413, 501}),
    "path traversal": (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", {404, 400}),
    "header injection in the trace id": (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Trace-Id: a\rSet-Cookie: x\r\n\r\n",
                                         {200, 400}),
}


@pytest.mark.parametrize("payload,allowed", list(HOSTILE_REQUESTS.values()), ids=list(HOSTILE_REQUESTS))
def test_a_hostile_request_gets_a_4xx_or_a_close(hostile_app, payload, allowed):
    reply = _exchange(hostile_app, payload)
    status = _status(reply)
    assert status in allowed or reply == b"", reply[:200]
    assert b"Set-Cookie" not in reply and b"root:" not in reply  # no injected header, no file served
    assert _status(_exchange(hostile_app, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200


def test_a_long_query_on_an_endpoint_without_parameters_is_served(hostile_app):
    reply = _exchange(hostile_app, b"GET /hello?x=" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n")
    assert _status(reply) == 200 and reply.endswith(b"hello\n")


def test_pipelined_requests_are_answered_in_order(hostile_app):
    one = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Trace-Id: t%d\r\n\r\n"
    payload = b"".join(one % i for i in range(5)) + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = _exchange(hostile_app, payload)
    assert reply.count(b"HTTP/1.1 200 OK") == 6
    assert [reply.find(b"X-Trace-Id: t%d" % i) for i in range(5)] == sorted(reply.find(b"X-Trace-Id: t%d" % i)
                                                                          for i in range(5))


def test_a_slow_client_does_not_block_others_and_is_closed_after_the_handler_timeout(hostile_app):
    with socket.create_connection(("127.0.0.1", hostile_app), timeout=10) as slow:
        slow.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # half a request, then silence
        began = time.monotonic()
        reply = _exchange(hostile_app, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(reply) == 200 and time.monotonic() - began < HANDLER_TIMEOUT_S / 2
        try:
            closed_with = slow.recv(4096)  # blocks until the server gives up on us
        except ConnectionResetError:
            closed_with = b""
        waited = time.monotonic() - began
    assert closed_with == b"" or _status(closed_with) == 408
    assert HANDLER_TIMEOUT_S * 0.8 <= waited < HANDLER_TIMEOUT_S + 3


def test_a_client_that_resets_mid_reply_leaves_no_traceback(hostile_app, capfd):
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", hostile_app), timeout=5) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            client.sendall(b"GET /mem?mb=8 HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
    time.sleep(0.5)
    assert _status(_exchange(hostile_app, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200
    assert "Traceback" not in capfd.readouterr().err  # a hang-up is the client's business, not an app fault


def test_the_app_keeps_serving_a_load_with_zero_errors_while_attacked(hostile_app):
    outcome: dict = {}
    load = threading.Thread(target=lambda: outcome.update(result=run_load(
        hostile_app, LoadSpec(path="/hello", connections=4, duration_s=0.5, warmup_s=0.1))))
    slow_clients = [socket.create_connection(("127.0.0.1", hostile_app), timeout=5) for _ in range(50)]
    try:
        for client in slow_clients:
            client.sendall(b"GET /hello HTTP/1.1\r\n")  # 50 slowloris clients each hold a thread
        load.start()
        rounds = 0
        while load.is_alive():
            for payload, _ in HOSTILE_REQUESTS.values():
                _exchange(hostile_app, payload)
            rounds += 1
        load.join()
    finally:
        for client in slow_clients:
            client.close()
    result = outcome["result"]
    assert rounds >= 1 and result.requests > 100
    assert result.errors == {}, result.errors


def test_connections_past_the_cap_get_a_503_and_the_rest_are_served():
    import http.client

    from bench.app.server import Server

    class _Capped(Server):
        max_connections = 2

    with serve_app(server_class=_Capped) as port:
        holders = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both are accepted and hold their slots, sending nothing
        with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
            assert third.recv(1024).startswith(b"HTTP/1.1 503")
        for holder in holders:
            holder.close()
        time.sleep(0.3)  # their threads see EOF and give their slots back
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/hello")
        assert connection.getresponse().status == 200
        connection.close()


def test_workloads_flag_with_a_scenario_file_picks_known_names_or_says_which_are_unknown(tmp_path):
    from bench.scenario import apply_overrides

    scenario = load_scenario("quick")
    picked = apply_overrides(scenario, workloads=["hello", "startup"])
    assert [w.name for w in picked.workloads] == ["hello", "startup"]
    outcome = runner.invoke(app, ["run", "quick", "--workloads", "hello,nope", "--out", str(tmp_path / "r")])
    assert outcome.exit_code == 1 and isinstance(outcome.exception, SystemExit), outcome.output
    (line,) = outcome.output.strip().splitlines()
    assert line.startswith("error: --workloads: unknown workload 'nope'"), line
