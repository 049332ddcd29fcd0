"""The benchmarked web app: one endpoint per kind of cost a layer can add.

Standard library only. A thread per connection (ThreadingHTTPServer), HTTP/1.1 keep-alive,
TCP_NODELAY, and every reply written in one send() so Nagle's algorithm and delayed ACKs
can never add their ~40 ms to a keep-alive request (README.md, "How it measures").

Its start-up is a measured figure, ~10x slower in a VM under TCG: a module only one endpoint
needs (hashlib, tempfile) is imported by that endpoint, and the usual command line is read
without argparse (bench.app.command).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import signal
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

PAGE_BYTES = 4096

# (name, default, minimum, maximum) of the one numeric parameter each endpoint takes.
PARAMETERS = {
    "/cpu": ("n", 1000, 1, 10_000_000),
    "/mem": ("mb", 16, 1, 4096),
    "/io": ("kb", 64, 1, 1_048_576),
}

_started_monotonic = time.monotonic()
_served = itertools.count()  # next() is atomic under the GIL: a lock-free request counter
_served_by_path: dict[str, int] = {}


class BadRequest(Exception):
    """A query the app refuses; the message becomes the one-line 400 body."""


class OverBudget(Exception):
    """A /mem request that would take the app past its memory budget; the message becomes a 503 body."""


class MemoryBudget:
    """The MiB that concurrent /mem requests may hold in total: the per-request cap alone lets N
    concurrent requests hold N times it."""

    def __init__(self, total_mb: int):
        self.total_mb = total_mb
        self.held_mb = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, mb: int):
        """Reserve mb MiB for the body of the with-block, or raise OverBudget at once (never wait)."""
        with self._lock:
            if self.held_mb + mb > self.total_mb:
                raise OverBudget(f"memory budget busy: {self.held_mb} of {self.total_mb} MB held by requests "
                                 f"in progress; {mb} more would pass it")
            self.held_mb += mb
        try:
            yield
        finally:
            with self._lock:
                self.held_mb -= mb


def _int_parameter(path: str, query: str) -> int:
    name, default, low, high = PARAMETERS[path]
    pairs = parse_qsl(query, keep_blank_values=True)
    value = default
    for key, raw in pairs:
        if key != name:
            raise BadRequest(f"unknown parameter {key[:40]!r} for {path}; expected {name}")
        if len(raw) > 12 or not raw.strip().lstrip("-").isdigit():
            raise BadRequest(f"{name} must be an integer from {low} to {high}")
        value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {value}")
    return value


def do_cpu(n: int) -> bytes:
    """Hash a 64-byte block n times: pure CPU, no syscalls."""
    import hashlib  # here, not at start-up: it loads OpenSSL's libcrypto

    digest = b"layerbench" * 6 + b"...."
    for _ in range(n):
        digest = hashlib.sha256(digest).digest() * 2
    return json.dumps({"rounds": n, "digest": digest[:32].hex()}).encode()


def do_mem(mb: int) -> bytes:
    """Allocate mb MiB and write one byte per page, so the kernel must really back them."""
    block = bytearray(mb * 1024 * 1024)
    for offset in range(0, len(block), PAGE_BYTES):
        block[offset] = 1
    touched = len(block) // PAGE_BYTES
    del block
    return json.dumps({"mb": mb, "pages_touched": touched}).encode()


def do_io(kb: int) -> bytes:
    """Write kb KiB to a temp file, fsync it, read it back: the storage path of a layer."""
    import tempfile  # here, not at start-up (it imports random)

    payload = os.urandom(1024) * kb
    # Named after the app's pid, as bench.scratch names its folders (this module imports nothing of
    # bench): `bench clean` removes a file an app killed mid-request left.
    fd, name = tempfile.mkstemp(prefix=f"layerbench-io-{os.getpid()}-")
    try:
        os.write(fd, payload)
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        read = 0
        while chunk := os.read(fd, 1 << 20):
            read += len(chunk)
    finally:
        os.close(fd)
        os.unlink(name)
    return json.dumps({"kb": kb, "written": len(payload), "read": read}).encode()


def do_json() -> bytes:
    """Serialize a small nested document: typical web-app CPU work."""
    items = [{"id": i, "name": f"item-{i}", "tags": ["a", "b", "c"], "price": i * 1.25} for i in range(50)]
    return json.dumps({"count": len(items), "items": items}).encode()


def _cgroup_limits() -> dict:
    """The limits the app sees from inside its layer (cgroup v2 or v1 files), where readable."""
    limits = {}
    for key, path in (("cpu_max", "/sys/fs/cgroup/cpu.max"), ("memory_max", "/sys/fs/cgroup/memory.max"),
                      ("cpuset", "/sys/fs/cgroup/cpuset.cpus.effective"),
                      # cgroup v1 (Docker mounts the container's own subtree at these paths)
                      ("cpu_cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                      ("cpu_cfs_period_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
                      ("memory_limit_in_bytes", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                      ("cpuset_v1", "/sys/fs/cgroup/cpuset/cpuset.effective_cpus")):
        try:
            with open(path) as handle:
                limits[key] = handle.read().strip()
        except OSError:
            pass
    return limits


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _net_dev() -> dict:
    """Packets and bytes each network interface has carried, as the app's own network namespace
    counts them (/proc/net/dev): a container's eth0, a guest's virtio NIC, or, for a process on the
    host's network, the host's lo. Under gVisor the sentry writes this file from its own netstack,
    or from the host's interfaces with --network=host. {} where the file cannot be read."""
    interfaces = {}
    try:
        with open("/proc/net/dev") as handle:
            lines = handle.read().splitlines()[2:]  # two header lines
    except OSError:
        return interfaces
    for line in lines:
        name, _, numbers = line.partition(":")
        fields = numbers.split()
        if len(fields) < 16 or not all(field.isdigit() for field in fields[:10]):
            continue
        interfaces[name.strip()] = {"rx_bytes": int(fields[0]), "rx_packets": int(fields[1]),
                                    "tx_bytes": int(fields[8]), "tx_packets": int(fields[9])}
    return interfaces


def do_stats() -> bytes:
    """The app's own view of itself, from inside whatever layer it runs in."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    uname = os.uname()
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except OSError:
        affinity = []
    stats = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "uptime_s": round(time.monotonic() - _started_monotonic, 3),
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "max_rss_bytes": usage.ru_maxrss * 1024,
        "rss_bytes": _rss_bytes(),
        "threads": threading.active_count(),
        "requests_served": dict(_served_by_path),
        "kernel": uname.release,
        "hostname": uname.nodename,
        "cpus_allowed": affinity,
        "cgroup": _cgroup_limits(),
        "net_dev": _net_dev(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
    }
    return json.dumps(stats).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "layerbench-app"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 30  # an idle or slow client loses its thread after 30 s instead of forever

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass  # a log line per request would be the benchmark's main cost

    def send_error(self, code, message=None, explain=None):
        # The base class answers a malformed request line HTTP/0.9-style (a bare HTML body) and
        # long pages otherwise; a client deserves a real status line and one line of reason.
        self.close_connection = True
        status = HTTPStatus(code)
        self._reply(status, f"{message or status.phrase}\n".encode("latin-1", "replace"), "text/plain", 0.0,
                    head=self.command == "HEAD")

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head: bool = False):
        began = time.perf_counter()
        split = urlsplit(self.path)
        path = split.path
        status = HTTPStatus.OK
        content_type = "application/json"
        try:
            if path == "/hello":
                body, content_type = b"hello\n", "text/plain"
            elif path == "/health":
                body, content_type = b"ok\n", "text/plain"
            elif path == "/cpu":
                body = do_cpu(_int_parameter(path, split.query))
            elif path == "/mem":
                mb = _int_parameter(path, split.query)
                with self.server.memory.hold(mb):
                    body = do_mem(mb)
            elif path == "/io":
                body = do_io(_int_parameter(path, split.query))
            elif path == "/json":
                body = do_json()
            elif path == "/stats":
                body = do_stats()
            else:
                status, body, content_type = HTTPStatus.NOT_FOUND, b"no such endpoint\n", "text/plain"
                path = "other"
        except BadRequest as error:
            status, body, content_type = HTTPStatus.BAD_REQUEST, f"{error}\n".encode(), "text/plain"
        except OverBudget as error:
            status, body, content_type = HTTPStatus.SERVICE_UNAVAILABLE, f"{error}\n".encode(), "text/plain"
        except MemoryError:
            status, body, content_type = HTTPStatus.INSUFFICIENT_STORAGE, b"out of memory\n", "text/plain"
        except OSError as error:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body, content_type = f"{error.strerror or error}\n".encode(), "text/plain"
        next(_served)
        _served_by_path[path] = _served_by_path.get(path, 0) + 1
        duration_ms = (time.perf_counter() - began) * 1000.0
        self._reply(status, body, content_type, duration_ms, head)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str, duration_ms: float, head: bool):
        headers = getattr(self, "headers", None)  # absent when the request line itself was malformed
        trace = headers.get("X-Trace-Id", "") if headers is not None else ""
        lines = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Server-Timing: app;dur={duration_ms:.3f}",
        ]
        if trace and len(trace) <= 128 and trace.isprintable():
            lines.append(f"X-Trace-Id: {trace}")
        if self.close_connection:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head_bytes if head else head_bytes + body)  # one write: see module docstring


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of connects from 64+ clients must not be refused
    allow_reuse_address = True

    # A thread per connection, capped: slow clients that dribble a byte before each 30 s timeout
    # can hold threads, but never more than this many; past it a connection gets a 503 and closes.
    max_connections = 512
    # What all /mem requests in progress may hold together: one request at the per-request cap.
    mem_budget_mb = PARAMETERS["/mem"][3]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self.memory = MemoryBudget(self.mem_budget_mb)

    def server_bind(self):
        # HTTPServer's own also looks up the host's fully qualified name (DNS, the idna codec),
        # which only CGI uses: a needless wait in every start, longest in a VM.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\n"
                                b"Connection: close\r\n\r\ntoo many connections")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        # A client that hangs up mid-reply (reset, broken pipe) is not an app fault: no traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve(host: str, port: int, ready_message: bool = True) -> None:
    """Serve until SIGTERM or SIGINT. Prints one line once listening (the VM init reads it)."""
    server = Server((host, port), Handler)

    def stop(signum, frame):
        # Raised in the main thread, it ends serve_forever at once (the signal interrupts its select);
        # shutdown() from another thread waited for the next poll, up to 0.2 s of every stop.
        raise SystemExit(0)

    # As PID 1 in a container, SIGTERM has no default action: without this, stop waits 10 s.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready_message:
        print(f"layerbench app listening on {host}:{server.server_address[1]} pid {os.getpid()}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def _arguments(argv: list[str]) -> tuple[str, int] | None:
    """(host, port) from `--host H --port P`, the command line every layer gives (bench.app.command),
    read without argparse, whose import is ~0.1 s of a start under TCG; None for anything else."""
    if len(argv) == 4 and argv[0] == "--host" and argv[2] == "--port" and argv[3].isdigit():
        return argv[1], int(argv[3])
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    address = _arguments(argv)
    if address is None:
        import argparse

        parser = argparse.ArgumentParser(prog="bench app", description="the layerbench web app (stdlib only)")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)
        args = parser.parse_args(argv)
        address = args.host, args.port
    host, port = address
    try:
        serve(host, port)
    except OSError as error:
        print(f"bench app: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
