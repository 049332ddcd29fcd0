"""The benchmarked app: every endpoint, its errors, and the headers the load generator relies on."""

from __future__ import annotations

import http.client
import json
import socket

import pytest


def get(port: int, path: str, headers: dict | None = None, method: str = "GET"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


@pytest.mark.parametrize("path", ["/hello", "/health", "/cpu?n=10", "/mem?mb=2", "/io?kb=4", "/json", "/stats"])
def test_every_endpoint_answers_200_with_server_timing(app_server, path):
    response, body = get(app_server, path)
    assert response.status == 200, body
    timing = response.getheader("Server-Timing")
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) >= 0
    assert int(response.getheader("Content-Length")) == len(body)


def test_trace_id_is_echoed(app_server):
    response, _ = get(app_server, "/hello", {"X-Trace-Id": "run7-42"})
    assert response.getheader("X-Trace-Id") == "run7-42"


def test_work_endpoints_do_the_work_they_say(app_server):
    assert json.loads(get(app_server, "/cpu?n=5")[1])["rounds"] == 5
    assert json.loads(get(app_server, "/mem?mb=3")[1])["pages_touched"] == 3 * 256
    io = json.loads(get(app_server, "/io?kb=8")[1])
    assert io["written"] == io["read"] == 8 * 1024
    assert json.loads(get(app_server, "/json")[1])["count"] == 50


@pytest.mark.parametrize("path", ["/cpu?n=abc", "/cpu?n=0", "/cpu?n=-5", "/cpu?n=99999999999999", "/mem?mb=1e3",
                                  "/io?kb=", "/cpu?x=1", "/mem?mb=999999"])
def test_bad_query_values_get_a_one_line_400(app_server, path):
    response, body = get(app_server, path)
    assert response.status == 400
    assert body.count(b"\n") == 1 and b"Traceback" not in body


def test_unknown_path_is_404_and_head_has_no_body(app_server):
    assert get(app_server, "/nope")[0].status == 404
    response, body = get(app_server, "/hello", method="HEAD")
    assert response.status == 200 and body == b""


def test_stats_reports_the_view_from_inside(app_server):
    stats = json.loads(get(app_server, "/stats")[1])
    for key in ("pid", "ppid", "uid", "uptime_s", "cpu_user_s", "cpu_sys_s", "max_rss_bytes", "kernel",
                "requests_served"):
        assert key in stats
    assert stats["max_rss_bytes"] > 1_000_000


def test_keep_alive_serves_many_requests_on_one_connection(app_server):
    connection = http.client.HTTPConnection("127.0.0.1", app_server, timeout=10)
    for _ in range(50):
        connection.request("GET", "/hello")
        response = connection.getresponse()
        assert response.read() == b"hello\n"
    connection.close()


def test_malformed_request_line_gets_400_and_the_server_stays_up(app_server):
    with socket.create_connection(("127.0.0.1", app_server), timeout=5) as raw:
        raw.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 400")
    assert get(app_server, "/hello")[0].status == 200


def test_oversized_header_is_refused(app_server):
    with socket.create_connection(("127.0.0.1", app_server), timeout=5) as raw:
        raw.sendall(b"GET /hello HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        assert raw.recv(1024).split(b" ")[1] in (b"400", b"431")
    assert get(app_server, "/hello")[0].status == 200


def test_mem_requests_past_the_memory_budget_get_a_503_while_others_are_served():
    from bench.app.server import PARAMETERS, Handler, Server
    from tests.conftest import serving

    assert Server.mem_budget_mb == PARAMETERS["/mem"][3]  # in production: one request at the per-request cap

    class _SmallBudget(Server):
        mem_budget_mb = 8

    with serving(_SmallBudget(("127.0.0.1", 0), Handler)) as server:
        port = server.server_address[1]
        with server.memory.hold(6):  # what a /mem?mb=6 request still in progress holds
            response, body = get(port, "/mem?mb=4")
            assert response.status == 503 and body.count(b"\n") == 1 and b"6 of 8 MB" in body, body
            assert get(port, "/mem?mb=2")[0].status == 200  # what is left of the budget is still served
            assert get(port, "/hello")[0].status == 200
        assert get(port, "/mem?mb=8")[0].status == 200  # the budget comes back when the request ends
        assert server.memory.held_mb == 0


def test_the_app_starts_without_the_modules_only_one_endpoint_or_tls_would_need():
    # Start-up is a measured figure (~10x slower in a TCG guest): these imports cost ~0.3 s there.
    import subprocess
    import sys

    from bench.app.command import PACKAGE_PARENT, app_argv

    argv = app_argv(sys.executable, "127.0.0.1", 0, app_dir=str(PACKAGE_PARENT))
    listen = "from bench.app.server import Handler, Server; Server(('127.0.0.1', 0), Handler).server_close()"
    code = argv[argv.index("-c") + 1].replace("sys.exit(main())", listen + "; print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "bench.app.server" in loaded and "http.server" in loaded
    assert not loaded & {"argparse", "hashlib", "_hashlib", "tempfile", "_ssl", "encodings.idna"}


def test_the_usual_command_line_is_read_without_argparse_and_any_other_with_it(capsys):
    from bench.app.server import _arguments, main

    assert _arguments(["--host", "0.0.0.0", "--port", "8080"]) == ("0.0.0.0", 8080)
    assert _arguments(["--port", "8080", "--host", "0.0.0.0"]) is None  # argparse reads that one
    with pytest.raises(SystemExit):
        main(["--port", "eighty"])
    assert "invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_app_at_once_with_status_0(sig):
    # Every stop of every setup waits for this; shutdown() from a thread took up to one 0.2 s poll.
    import signal
    import subprocess
    import sys
    import time

    from bench.app.command import PACKAGE_PARENT, app_argv

    app = subprocess.Popen(app_argv(sys.executable, "127.0.0.1", 0, app_dir=str(PACKAGE_PARENT)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"listening on" in app.stdout.readline()
        began = time.monotonic()
        app.send_signal(getattr(signal, sig))
        _, stderr = app.communicate(timeout=10)
    finally:
        app.kill()
        app.wait()
    assert app.returncode == 0 and stderr == b""
    assert time.monotonic() - began < 1.0
