"""The built-in generator's engine: keep-alive HTTP/1.1 connections on one event loop, one callback
per read, no coroutine or future per request (that is what makes it fast enough to matter).

Closed loop: each connection sends the next request as soon as the previous reply is in.
Open loop: requests are due at a fixed rate; latency is measured from the time a request was
*due*, not when it was sent, so a stalled server cannot hide its stall (coordinated omission).

Any HTTP/1.1 server is a target. The trace id the generator sends (X-Trace-Id) is checked only
when the server echoes it (a wrong echo is an error, a missing one is not); Server-Timing's app
duration is recorded when present. `Connection: close` and idle keep-alive closes reconnect.

A reply seen before is not parsed again (bench.load.known_replies: ~1-3 us of Python per reply
instead of ~9 us).
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from bench.load.cpu_clock import Clock, elapsed, thread_clock
from bench.load.http1 import CHUNKED, HEAD_END, MAX_HEAD_BYTES, UNTIL_CLOSE, BadResponse, ChunkedBody, parse_head
from bench.load.known_replies import TRACE_ECHO, KnownReplies
from bench.load.spec import TRACE_HEADER, USER_AGENT, LoadSpec

_RETRY_CONNECT_S = 0.05  # after a refused connect
_RETRY_AFTER_ERROR_S = 0.01  # after a reset or an unexpected close
COMPLETION_BIN_NS = 10_000_000  # completions are counted per 10 ms of the window: gaps show, sizes stay small


@dataclass
class RawResult:
    """What one event loop measured over its window; plain data, so a worker process can send it."""

    latency_ns: array  # int64 per completed request
    app_ms: array  # float per completed request, NaN when the server sent no Server-Timing
    completions: array  # completed requests per COMPLETION_BIN_NS of the window (a stall is a run of zeros)
    bins_start_ns: int  # time.perf_counter_ns() where the first bin starts (one clock for every process)
    errors: dict[str, int]
    sent: int
    window: tuple[float, float]  # time.monotonic() at the start and end of the measured window
    cpu: Clock  # the loop thread's CPU (and run-queue wait) over the window
    event_loop: str  # module of the loop class: "uvloop" or "asyncio..."
    cpus: list[int]  # the CPUs this loop's process was allowed to run on


class Recorder:
    """Shared by all connections of a loop: keeps results only inside the measured window."""

    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False
        self.latency_ns = array("q")
        self.app_ms = array("d")
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.completions = array("I")
        self.bins_start_ns = 0
        self._counted = 0

    def open_window(self, duration_s: float) -> None:
        """Start measuring: latencies are kept, and a timer counts completions per bin (nothing is
        added to the per-request path, which is what limits the generator)."""
        self.completions = array("I", bytes(4 * (int(duration_s * 1e9) // COMPLETION_BIN_NS + 2)))
        self.bins_start_ns = time.perf_counter_ns()
        self._counted = 0
        self.measuring = True
        asyncio.get_running_loop().call_later(COMPLETION_BIN_NS / 1e9, self.count_completions)

    def count_completions(self) -> None:
        """Put the requests completed since the last count in the bin of now; again in one bin's time."""
        done = len(self.latency_ns)
        index = (time.perf_counter_ns() - self.bins_start_ns) // COMPLETION_BIN_NS
        if index < len(self.completions):
            self.completions[index] += done - self._counted
        self._counted = done
        if self.measuring:
            asyncio.get_running_loop().call_later(COMPLETION_BIN_NS / 1e9, self.count_completions)

    def error(self, kind: str) -> None:
        if self.measuring:
            self.errors[kind] += 1


class Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, frames the whole reply, hands over to the client."""

    __slots__ = (
        "body_left",
        "chunked",
        "client",
        "closed",
        "due_ns",
        "failed",
        "head",
        "in_flight",
        "number",
        "pending",
        "known",
        "prefix",
        "echo_prefix",
        "recorder",
        "sent_ns",
        "sequence",
        "transport",
    )

    def __init__(self, client: Client, number: int) -> None:
        self.client = client
        self.recorder = client.recorder
        self.number = number
        self.prefix = client.request_prefix + b"%d-" % number
        self.echo_prefix = TRACE_ECHO + b"%d-" % number  # + sequence + CRLF: the echo of the trace id sent
        self.transport: asyncio.Transport | None = None
        self.pending = b""  # an incomplete head or chunk-size line, kept until the next read
        self.head = None  # the parsed head of the reply whose body is being read
        self.body_left = 0  # Content-Length bytes still to come, or UNTIL_CLOSE
        self.chunked: ChunkedBody | None = None
        self.sequence = 0  # of the request in flight; its trace id is b"<number>-<sequence>"
        self.known = client.known
        self.due_ns = 0  # when the in-flight request was due (open loop) or sent (closed loop)
        self.sent_ns = 0
        self.in_flight = False
        self.failed = False  # closed by an error, not by the server's keep-alive policy
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due_ns: int, now_ns: int) -> None:
        self.sequence += 1
        self.due_ns = due_ns
        self.sent_ns = now_ns
        self.in_flight = True
        self.recorder.sent += 1
        self.transport.write(self.prefix + b"%d\r\n\r\n" % self.sequence)

    def fail(self, kind: str) -> None:
        self.recorder.error(kind)
        self.in_flight = False
        self.failed = True
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        # Fast path: the read is exactly one whole success seen before (a server's replies to the
        # same request are byte-identical until its Date header ticks), or one seen before but for
        # the echo of this request's trace id and its Server-Timing duration: parsed once.
        if self.pending or self.head is not None or not self.in_flight:
            self._frame(data)
            return
        app_ms = self.known.plain.get(data)
        if app_ms is None:
            app_ms = self.known.traced_app_ms(data, self.echo_prefix + b"%d\r\n" % self.sequence)
            if app_ms is None:
                self._frame(data)
                return
        now = time.perf_counter_ns()
        self.in_flight = False
        recorder = self.recorder
        if recorder.measuring:
            recorder.latency_ns.append(now - self.due_ns)
            recorder.app_ms.append(app_ms)
        if recorder.stopping:
            self.transport.close()
        elif self.client.closed_loop:
            self.send(now, now)
        else:
            self.client.send_next(self)

    def _frame(self, data: bytes) -> None:
        """The general case: any number of replies or parts of one in `data`."""
        whole_read = not self.pending and self.head is None
        if self.pending:
            data = self.pending + data
            self.pending = b""
        pos = 0
        size = len(data)
        while pos < size:
            if self.head is None:
                end = data.find(HEAD_END, pos)
                if end < 0:
                    self._keep(data, pos)
                    return
                try:
                    self.head = head = parse_head(data[pos:end + 2])
                except BadResponse:
                    self.fail("bad_response")
                    return
                if whole_read and pos == 0 and end + 4 + head.body_bytes == size:
                    self.known.remember(data, head, self.echo_prefix + b"%d\r\n" % self.sequence)
                pos = end + 4
                if head.body_bytes == CHUNKED:
                    self.chunked = ChunkedBody()
                else:
                    self.body_left = head.body_bytes
            if self.chunked is not None:
                try:
                    done, pos = self.chunked.feed(data, pos)
                except BadResponse:
                    self.fail("bad_response")
                    return
                if not done:
                    self._keep(data, pos)
                    return
                self.chunked = None
            elif self.body_left:
                if self.body_left == UNTIL_CLOSE:
                    return  # everything until the server closes is this reply's body
                taken = min(self.body_left, size - pos)
                self.body_left -= taken
                pos += taken
                if self.body_left:
                    return
            self._complete()

    def _keep(self, data: bytes, pos: int) -> None:
        if size := len(data) - pos:
            if size > MAX_HEAD_BYTES:
                self.fail("bad_response")
            else:
                self.pending = data[pos:]

    def _complete(self) -> None:
        head = self.head
        self.head = None
        if head.status < 200:
            return  # an interim reply (100 Continue): the real one follows
        now = time.perf_counter_ns()
        recorder = self.recorder
        if not self.in_flight:
            self.fail("unexpected_response")
            return
        self.in_flight = False
        if head.status >= 300:
            recorder.error(f"http_{head.status}")
        elif head.trace_id is not None and head.trace_id != b"%d-%d" % (self.number, self.sequence):
            recorder.error("trace_id_mismatch")
        elif recorder.measuring:
            recorder.latency_ns.append(now - self.due_ns)
            recorder.app_ms.append(head.app_ms)
        if head.close or recorder.stopping:
            self.transport.close()  # the server said so (the connection loop reconnects), or we are done
        elif self.client.closed_loop:
            self.send(now, now)
        else:
            self.client.send_next(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head is not None and self.body_left == UNTIL_CLOSE and exc is None:
            self._complete()  # the close ended the body
            self.in_flight = False
        if self.in_flight and not self.recorder.stopping:
            self.recorder.error("connection_reset" if exc else "connection_closed")
            self.failed = True
        self.in_flight = False
        if not self.closed.done():
            self.closed.set_result(None)


class Client:
    """The connections of one event loop, their request schedule and their timeouts."""

    def __init__(self, port: int, spec: LoadSpec, recorder: Recorder) -> None:
        self.port = port
        self.spec = spec
        self.recorder = recorder
        self.loop = asyncio.get_running_loop()
        self.request_prefix = (f"GET {spec.path} HTTP/1.1\r\nHost: {spec.host}:{port}\r\n"
                               f"User-Agent: {USER_AGENT}\r\n{TRACE_HEADER}: ").encode()
        self.interval_ns = 0
        self.closed_loop = spec.mode == "closed"
        self.known = KnownReplies()
        self.start_ns = time.perf_counter_ns()
        self.live: dict[int, Connection] = {}  # connection number -> its current connection
        self.last_due: dict[int, int] = {}  # open loop: connection number -> its latest scheduled send
        if spec.mode == "open":
            # Each connection carries an equal share of the rate, phase-shifted from the others.
            self.interval_ns = int(spec.connections * 1e9 / spec.rate_rps)
        self.sweep_s = min(0.25, spec.timeout_s / 4)
        self.loop.call_later(self.sweep_s, self._sweep_timeouts)

    def _sweep_timeouts(self) -> None:
        """One timer for all connections instead of one per request (which cost more than parsing)."""
        if self.recorder.stopping:
            return
        oldest_ns = time.perf_counter_ns() - int(self.spec.timeout_s * 1e9)
        for connection in list(self.live.values()):
            if connection.in_flight and connection.sent_ns < oldest_ns:
                connection.fail("timeout")
        self.loop.call_later(self.sweep_s, self._sweep_timeouts)

    def first_request(self, connection: Connection) -> None:
        if self.spec.mode == "open":
            # After a reconnect the schedule goes on where it was (a lost request counted as an
            # error), so the rate does not restart from zero nor burst to catch up.
            last_due = self.last_due.get(connection.number)
            offset = connection.number * self.interval_ns // self.spec.connections
            self._send_when_due(connection, self.start_ns + offset if last_due is None else last_due + self.interval_ns)
        else:
            now = time.perf_counter_ns()
            connection.send(now, now)

    def send_next(self, connection: Connection) -> None:
        """Open loop: the next request of `connection` is due one interval after its last."""
        self._send_when_due(connection, connection.due_ns + self.interval_ns)

    def _send_when_due(self, connection: Connection, due_ns: int) -> None:
        self.last_due[connection.number] = due_ns
        now_ns = time.perf_counter_ns()
        if due_ns <= now_ns:
            connection.send(due_ns, now_ns)  # late: send now, but latency still counts from due_ns
        else:
            self.loop.call_later((due_ns - now_ns) / 1e9, self._send_if_running, connection, due_ns)

    def _send_if_running(self, connection: Connection, due_ns: int) -> None:
        if self.recorder.stopping:
            connection.transport.close()  # idle between scheduled sends: nothing in flight to wait for
        elif not connection.transport.is_closing():
            connection.send(due_ns, time.perf_counter_ns())

    def abort_all(self) -> None:
        """Close every socket now (a request stuck past its timeout must not leak one)."""
        for connection in self.live.values():
            if connection.transport is not None:
                connection.transport.abort()


async def _connection_loop(client: Client, number: int) -> None:
    """Keep one connection busy until stopping; reconnect after a close or an error."""
    loop = client.loop
    while not client.recorder.stopping:
        try:
            _, connection = await loop.create_connection(lambda: Connection(client, number), client.spec.host,
                                                         client.port)
        except OSError:
            client.recorder.error("connect")
            await asyncio.sleep(_RETRY_CONNECT_S)
            continue
        client.live[number] = connection
        client.first_request(connection)
        await connection.closed
        if connection.failed and not client.recorder.stopping:
            await asyncio.sleep(_RETRY_AFTER_ERROR_S)


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def drive(port: int, spec: LoadSpec, numbers: Iterable[int], start: float, clients: list[Client]) -> RawResult:
    """Run connections `numbers` from time.monotonic() `start`: warm up, then measure
    [start + warmup, start + warmup + duration]. Appends its Client to `clients` at once, so a
    caller unwound by an interrupt can still close the sockets."""
    await _sleep_until(start)
    recorder = Recorder()
    client = Client(port, spec, recorder)
    clients.append(client)
    tasks = [asyncio.ensure_future(_connection_loop(client, number)) for number in numbers]
    await _sleep_until(start + spec.warmup_s)
    recorder.open_window(spec.duration_s)
    clock_start, window_start = thread_clock(), time.monotonic()
    await _sleep_until(start + spec.warmup_s + spec.duration_s)
    recorder.measuring = False
    recorder.count_completions()  # the last bin's completions
    clock_end, window_end = thread_clock(), time.monotonic()
    recorder.stopping = True
    _, pending = await asyncio.wait(tasks, timeout=spec.timeout_s + 1)
    for task in pending:
        task.cancel()
    client.abort_all()
    return RawResult(latency_ns=recorder.latency_ns, app_ms=recorder.app_ms, completions=recorder.completions,
                     bins_start_ns=recorder.bins_start_ns, errors=dict(recorder.errors),
                     sent=recorder.sent, window=(window_start, window_end), cpu=elapsed(clock_start, clock_end),
                     event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
                     cpus=sorted(os.sched_getaffinity(0)))


def event_loop_factory():
    """uvloop's loop when installed: here it spent 1.6x less CPU per request than asyncio's own loop
    (nginx /hello, one core; tools/generator_check.py's figure for wrk / built-in is near 1)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop
