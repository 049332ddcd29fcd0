"""Hostile input: malformed scenario files, absurd flags, corrupt results, and hostile HTTP clients.

Each must end in our own error type and one clear message (never a traceback), and the app must
answer a hostile request with a 4xx or a close while it keeps serving everyone else.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import results
from bench.app.server import Handler
from bench.cli import app
from tests.conftest import serve_app
from bench.load.builtin import LoadSpec, run_load
from bench.scenario import ScenarioError, load_scenario, parse_scenario

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
        hostile_app, LoadSpec(path="/hello", connections=4, duration_s=1.5, warmup_s=0.2))))
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

    server = _Capped(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
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
    finally:
        server.shutdown()
        server.server_close()
