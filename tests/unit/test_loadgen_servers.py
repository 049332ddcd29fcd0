"""The built-in generator against servers that are not layerbench's app: no trace id, no
Server-Timing, chunked bodies, replies split across reads, `Connection: close`, lower-case names."""

from __future__ import annotations

import contextlib
import math
import re
import socket
import socketserver
import time
from collections.abc import Callable, Iterator

from bench.load import connection
from bench.load.builtin import LoadSpec, run_load
from bench.load.http1 import parse_head
from tests.conftest import serving

Reply = Callable[[bytes, int], list[bytes]]  # (trace id sent, request number on this connection) -> pieces


@contextlib.contextmanager
def responder(reply: Reply, close_after: int = 0) -> Iterator[int]:
    """A tiny keep-alive HTTP/1.1 server on 127.0.0.1; each piece of a reply is a separate write,
    a little apart, so the generator sees it split across reads. Closes after `close_after`
    replies when that is > 0. Yields its port."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer, served = b"", 0
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = self.request.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                match = re.search(rb"\r\nX-Trace-Id: ([^\r]*)", head)
                served += 1
                pieces = reply(match.group(1) if match else b"", served)
                for index, piece in enumerate(pieces):
                    if index:
                        time.sleep(0.0005)
                    self.request.sendall(piece)
                if close_after and served >= close_after:
                    return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with serving(Server(("127.0.0.1", 0), Handler)) as server:
        yield server.server_address[1]


def _load(port: int, **changes) -> object:
    # 0.2 s: each reply takes a few milliseconds here, so even a loaded machine gives far more replies than any
    # test below asks for.
    return run_load(port, LoadSpec(**{"path": "/", "connections": 2, "duration_s": 0.2, "warmup_s": 0.05,
                                      "processes": 1, **changes}))


def plain(trace: bytes, count: int) -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\nServer: tiny\r\nContent-Length: 6\r\n\r\nhello\n"]


def test_a_server_without_trace_ids_or_server_timing_counts_successes():
    with responder(plain) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 20
    assert len(result.app_ms) == result.requests and all(math.isnan(value) for value in result.app_ms)


def test_lower_case_names_and_a_correct_trace_echo_are_successes():
    def reply(trace: bytes, count: int) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-trace-id: %s\r\n"
                b"server-timing: app;dur=0.5\r\n\r\nok" % trace]

    with responder(reply) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 20
    assert set(result.app_ms) == {0.5}


def test_a_wrong_trace_id_is_an_error():
    def reply(trace: bytes, count: int) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Trace-Id: %s0\r\n\r\nok" % trace]

    with responder(reply) as port:
        result = _load(port)
    assert result.requests == 0 and result.errors.get("trace_id_mismatch", 0) > 20


def test_chunked_replies_split_across_reads_are_framed():
    def reply(trace: bytes, count: int) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nTransfer-Enc", b"oding: chunked\r\n\r\n4\r\nab", b"cd\r\n3;x=y\r\nefg\r\n",
                b"0\r\nTrailer: 1\r\n", b"\r\n"]

    with responder(reply) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 5


def test_a_head_and_body_split_across_reads_are_framed():
    def reply(trace: bytes, count: int) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 10\r\n\r", b"\n01234", b"56789"]

    with responder(reply) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 5


def test_connection_close_reconnects_and_is_not_an_error():
    def reply(trace: bytes, count: int) -> list[bytes]:
        close = b"Connection: close\r\n" if count == 3 else b""
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n%s\r\nok" % close]

    with responder(reply, close_after=3) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 20
    assert result.sent >= result.requests  # many connections of three requests each


def test_a_body_that_ends_at_close_is_a_success():
    def reply(trace: bytes, count: int) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nServer: old\r\n\r\nno length, ", b"ends at close"]

    with responder(reply, close_after=1) as port:
        result = _load(port)
    assert result.errors == {} and result.requests > 5


def test_a_reply_that_is_not_http_is_a_bad_response():
    with responder(lambda trace, count: [b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]) as port:
        result = _load(port)
    assert result.requests == 0 and result.errors.get("bad_response", 0) > 0


def test_a_server_that_never_answers_times_out():
    with responder(lambda trace, count: (time.sleep(0.3), [])[1]) as port:
        result = _load(port, connections=1, duration_s=0.25, warmup_s=0.0, timeout_s=0.1)
    assert result.requests == 0 and result.errors.get("timeout", 0) >= 1


def _app_like(trace: bytes, count: int, status: bytes = b"200 OK") -> list[bytes]:
    """As layerbench's app replies: the trace id echoed, a Server-Timing duration that changes."""
    return [b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nServer-Timing: app;dur=%d.%03d\r\n"
            b"X-Trace-Id: %s\r\n\r\nhello\n" % (status, count // 1000, count % 1000, trace)]


def test_replies_that_differ_only_in_trace_echo_and_duration_are_parsed_once(monkeypatch):
    # Parsing every such reply cost ~9 us of Python against ~3 us for the fast path.
    parsed = []
    monkeypatch.setattr(connection, "parse_head", lambda head: parsed.append(head) or parse_head(head))
    with responder(_app_like) as port:
        result = _load(port, connections=1)
    assert result.errors == {} and result.requests > 50
    assert len(parsed) <= 3  # the first reply (and the warm-up's last, at most)
    # Every duration is the server's own: request n of the connection said n/1000 ms.
    assert all(value > 0 and abs(value * 1000 - round(value * 1000)) < 1e-6 for value in result.app_ms)
    assert len(set(result.app_ms)) == result.requests


def test_a_wrong_echo_or_status_after_the_fast_path_learned_is_still_an_error():
    def reply(trace: bytes, count: int) -> list[bytes]:
        if count % 3 == 1:
            return _app_like(trace + b"0", count)
        if count % 3 == 2:
            return _app_like(trace, count, status=b"500 Internal Server Error")
        return _app_like(trace, count)

    with responder(reply) as port:
        result = _load(port, connections=1)
    assert result.errors.get("trace_id_mismatch", 0) > 5 and result.errors.get("http_500", 0) > 5
    assert result.requests > 5 and abs(result.errors["http_500"] - result.requests) <= 2
