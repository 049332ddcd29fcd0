"""The built-in load generator: asyncio, raw keep-alive HTTP/1.1, one callback per response.

Closed loop: N connections each send the next request as soon as the previous reply is in.
Open loop: requests are due at a fixed rate; latency is measured from the time a request was
*due*, not when it was sent, so a stalled server cannot hide its stall (coordinated omission).

It is written as an asyncio.Protocol rather than streams: no coroutine or future per request,
so one core of Python drives the app well past what the app itself can serve.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench.netutil import LOOPBACK

_HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True)
class LoadSpec:
    """What load to apply. `rate_rps` is required for mode "open" and ignored for "closed"."""

    path: str = "/hello"
    mode: str = "closed"
    connections: int = 8
    duration_s: float = 10.0
    warmup_s: float = 1.0
    rate_rps: float | None = None
    timeout_s: float = 10.0


@dataclass
class LoadResult:
    """Every latency of the measured window, errors by kind, and the window's bounds."""

    requests: int  # completed with a 2xx inside the measured window
    errors: dict[str, int]
    duration_s: float  # length of the measured window
    latency_ms: np.ndarray  # one per completed request, client-side
    app_ms: np.ndarray  # Server-Timing app;dur of the same requests, in-app time
    window: tuple[float, float] = (0.0, 0.0)  # time.monotonic() at start and end of the window
    sent: int = 0
    generator: str = "builtin"
    notes: dict = field(default_factory=dict)
    # The longest stretch of the window with no completed request, and when it ended (s into the
    # window); None when the generator cannot tell (wrk).
    longest_gap_s: float | None = None
    longest_gap_end_s: float | None = None

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


class _Recorder:
    """Shared by all connections: collects results only inside the measured window."""

    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False
        self.latency_ns = array("q")
        self.app_ms = array("d")
        self.errors: Counter[str] = Counter()
        self.sent = 0
        # The longest time without a single completion (a stalled app): two numbers, not a timeline.
        self.last_completion_ns = 0
        self.longest_gap_ns = 0
        self.longest_gap_end_ns = 0

    def start(self, now_ns: int) -> None:
        """The measured window opens: a gap counts from here."""
        self.measuring = True
        self.last_completion_ns = now_ns

    def stop(self, now_ns: int) -> None:
        """The measured window closes: a gap still open counts up to here."""
        self._gap_until(now_ns)
        self.measuring = False

    def _gap_until(self, now_ns: int) -> None:
        if now_ns - self.last_completion_ns > self.longest_gap_ns:
            self.longest_gap_ns, self.longest_gap_end_ns = now_ns - self.last_completion_ns, now_ns
        self.last_completion_ns = now_ns

    def record(self, latency_ns: int, app_ms: float, now_ns: int) -> None:
        if self.measuring:
            self.latency_ns.append(latency_ns)
            self.app_ms.append(app_ms)
            self._gap_until(now_ns)

    def error(self, kind: str) -> None:
        if self.measuring:
            self.errors[kind] += 1


def _parse_app_ms(head: bytes) -> float:
    start = head.find(b"Server-Timing: app;dur=")
    if start < 0:
        return float("nan")
    start += 23
    end = head.find(b"\r\n", start)
    try:
        return float(head[start:end])
    except ValueError:
        return float("nan")


def _content_length(head: bytes) -> int:
    start = head.find(b"Content-Length: ")
    if start < 0:
        start = head.lower().find(b"content-length: ")
        if start < 0:
            return 0
    start += 16
    return int(head[start:head.find(b"\r\n", start)])


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends a request, waits for the whole reply, repeats."""

    def __init__(self, client: "_Client", number: int) -> None:
        self.client = client
        self.number = number
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sequence = 0
        self.due_ns = 0  # when the in-flight request was due (open loop) or sent (closed loop)
        self.in_flight = False
        self.closed = asyncio.get_running_loop().create_future()
        self.timeout_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due_ns: int) -> None:
        self.sequence += 1
        self.due_ns = due_ns
        self.in_flight = True
        self.client.recorder.sent += 1
        self.transport.write(self.client.request_prefix + f"{self.number}-{self.sequence}\r\n\r\n".encode())
        self.timeout_handle = self.client.loop.call_later(self.client.spec.timeout_s, self._timed_out)

    def _timed_out(self) -> None:
        self.client.recorder.error("timeout")
        self.in_flight = False
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end + 2])
            try:
                total = end + 4 + _content_length(head)
            except ValueError:
                self.client.recorder.error("bad_response")
                self.transport.abort()
                return
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self._complete(head)

    def _complete(self, head: bytes) -> None:
        now = time.perf_counter_ns()
        if self.timeout_handle is not None:
            self.timeout_handle.cancel()
        self.in_flight = False
        recorder = self.client.recorder
        status = head[9:12]
        if status[:1] != b"2":
            recorder.error(f"http_{status.decode(errors='replace')}")
        elif head.find(b"X-Trace-Id: %d-%d\r\n" % (self.number, self.sequence)) < 0:
            recorder.error("trace_id_mismatch")
        else:
            recorder.record(now - self.due_ns, _parse_app_ms(head), now)
        self.client.next_request(self, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timeout_handle is not None:
            self.timeout_handle.cancel()
        if self.in_flight and not self.client.recorder.stopping:
            self.client.recorder.error("connection_reset" if exc else "connection_closed")
        if not self.closed.done():
            self.closed.set_result(None)


class _Client:
    def __init__(self, port: int, spec: LoadSpec, recorder: _Recorder) -> None:
        self.port = port
        self.spec = spec
        self.recorder = recorder
        self.loop = asyncio.get_running_loop()
        self.request_prefix = (f"GET {spec.path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
                               f"User-Agent: layerbench\r\nX-Trace-Id: ").encode()
        self.interval_ns = 0
        self.connections: list[_Connection] = []
        self.last_due: dict[int, int] = {}  # open loop: connection number -> its latest scheduled send
        if spec.mode == "open":
            # Each connection carries an equal share of the rate, phase-shifted from the others.
            self.interval_ns = int(spec.connections * 1e9 / spec.rate_rps)

    def first_request(self, connection: _Connection, start_ns: int) -> None:
        if self.spec.mode == "open":
            # After a reconnect the schedule goes on where it was (the lost request counted as an
            # error), so the rate does not restart from zero nor burst to catch up.
            last_due = self.last_due.get(connection.number)
            offset = connection.number * self.interval_ns // self.spec.connections
            self._send_when_due(connection, start_ns + offset if last_due is None else last_due + self.interval_ns)
        else:
            connection.send(time.perf_counter_ns())

    def next_request(self, connection: _Connection, now_ns: int) -> None:
        if self.recorder.stopping:
            connection.transport.close()
            return
        if self.spec.mode == "open":
            self._send_when_due(connection, connection.due_ns + self.interval_ns)
        else:
            connection.send(now_ns)

    def _send_when_due(self, connection: _Connection, due_ns: int) -> None:
        self.last_due[connection.number] = due_ns
        delay_s = (due_ns - time.perf_counter_ns()) / 1e9
        if delay_s <= 0:
            connection.send(due_ns)  # late: send now, but latency still counts from due_ns
        else:
            self.loop.call_later(delay_s, self._send_if_running, connection, due_ns)

    def _send_if_running(self, connection: _Connection, due_ns: int) -> None:
        if self.recorder.stopping:
            connection.transport.close()  # idle between scheduled sends: nothing in flight to wait for
        elif not connection.transport.is_closing():
            connection.send(due_ns)


async def _connection_loop(client: _Client, number: int, start_ns: int) -> None:
    """Keep one connection busy until stopping; reconnect after errors (counted as such)."""
    loop = client.loop
    while not client.recorder.stopping:
        try:
            _, connection = await loop.create_connection(lambda: _Connection(client, number), LOOPBACK, client.port)
        except OSError:
            client.recorder.error("connect")
            await asyncio.sleep(0.05)
            continue
        client.connections.append(connection)
        client.first_request(connection, start_ns)
        await connection.closed
        if not client.recorder.stopping:
            await asyncio.sleep(0.01)


async def _drive(port: int, spec: LoadSpec, clients: list["_Client"]) -> LoadResult:
    recorder = _Recorder()
    client = _Client(port, spec, recorder)
    clients.append(client)  # so run_load can close its sockets if an interrupt unwinds the loop
    start_ns = time.perf_counter_ns()
    tasks = [asyncio.ensure_future(_connection_loop(client, n, start_ns)) for n in range(spec.connections)]
    await asyncio.sleep(spec.warmup_s)
    recorder.start(time.perf_counter_ns())
    window_start = time.monotonic()
    measure_start = time.perf_counter()
    await asyncio.sleep(spec.duration_s)
    recorder.stop(time.perf_counter_ns())
    duration_s = time.perf_counter() - measure_start
    window_end = time.monotonic()
    recorder.stopping = True
    _, pending = await asyncio.wait(tasks, timeout=spec.timeout_s + 1)
    for task in pending:
        task.cancel()
    for connection in client.connections:
        connection.transport.abort()  # a request stuck past its timeout must not leak a socket
    latency_ms = np.frombuffer(recorder.latency_ns, dtype=np.int64).astype(np.float64) / 1e6
    return LoadResult(requests=len(latency_ms), errors=dict(recorder.errors), duration_s=duration_s,
                      latency_ms=latency_ms, app_ms=np.frombuffer(recorder.app_ms, dtype=np.float64).copy(),
                      window=(window_start, window_end), sent=recorder.sent,
                      longest_gap_s=recorder.longest_gap_ns / 1e9,
                      longest_gap_end_s=(recorder.longest_gap_end_ns / 1e9 - measure_start))


def _event_loop_factory():
    try:
        import uvloop  # optional: faster event loop when installed
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_load(port: int, spec: LoadSpec) -> LoadResult:
    """Apply `spec` to http://127.0.0.1:port and return what was measured (blocks duration+warmup)."""
    if spec.mode not in ("closed", "open"):
        raise ValueError(f"load mode must be 'closed' or 'open', not {spec.mode!r}")
    if spec.mode == "open" and not spec.rate_rps:
        raise ValueError("open-loop load needs a rate_rps > 0")
    if spec.connections < 1:
        raise ValueError("connections must be at least 1")
    clients: list[_Client] = []
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        try:
            return runner.run(_drive(port, spec, clients))
        finally:
            # After a normal end this is a no-op; after Ctrl-C/SIGTERM it closes the sockets
            # (the runner's close, which follows, lets the loop finish closing them).
            for client in clients:
                for connection in client.connections:
                    connection.transport.abort()
