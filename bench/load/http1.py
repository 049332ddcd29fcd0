"""Framing HTTP/1.1 responses as they arrive: where a reply's head ends, how long its body is,
and what it says that the generator uses (status, Connection, X-Trace-Id, Server-Timing).

Any HTTP/1.1 server is a valid target: header names are matched without regard to case, a body is
delimited by Content-Length, by chunked transfer coding, or by the server closing the connection
(RFC 9112 section 6.3). Bodies are counted and dropped, never kept.
"""

from __future__ import annotations

from typing import NamedTuple

HEAD_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024  # a head (or a chunk-size line) longer than this is not a reply we can frame
CHUNKED = -1  # Head.body_bytes: the body is in chunks
UNTIL_CLOSE = -2  # Head.body_bytes: the body ends when the server closes the connection


class BadResponse(ValueError):
    """The bytes received are not an HTTP/1.x reply this generator can frame."""


class Head(NamedTuple):
    status: int
    body_bytes: int  # >= 0, or CHUNKED, or UNTIL_CLOSE
    close: bool  # the server closes the connection after this reply
    trace_id: bytes | None  # X-Trace-Id as echoed, None when the server sends none
    app_ms: float  # Server-Timing app;dur=, NaN when absent


def _header(lowered: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (given as b"\\r\\nname:") in a lower-cased head, stripped."""
    start = lowered.find(name)
    if start < 0:
        return None
    start += len(name)
    return lowered[start:lowered.find(b"\r\n", start)].strip()


def app_ms_from(server_timing: bytes | None) -> float:
    """The `dur` of the `app` metric in a Server-Timing value (ms), NaN when there is none."""
    if not server_timing:
        return float("nan")
    for metric in server_timing.split(b","):
        name, *params = metric.split(b";")
        if name.strip() != b"app":
            continue
        for param in params:
            key, _, value = param.partition(b"=")
            if key.strip() == b"dur":
                try:
                    return float(value.strip().strip(b'"'))
                except ValueError:
                    return float("nan")
    return float("nan")


def parse_head(head: bytes) -> Head:
    """Parse a status line and headers, each line ending in CRLF (the blank line excluded)."""
    if head[:7] != b"HTTP/1." or head[8:9] != b" ":
        raise BadResponse("no HTTP/1.x status line")
    try:
        status = int(head[9:12])
    except ValueError:
        raise BadResponse("status code is not a number") from None
    lowered = head.lower()
    connection = _header(lowered, b"\r\nconnection:")
    if head[7:8] == b"0":  # HTTP/1.0 closes unless it says keep-alive
        close = connection is None or b"keep-alive" not in connection
    else:
        close = connection is not None and b"close" in connection
    if status < 200 or status in (204, 304):
        body_bytes = 0
    elif b"chunked" in (_header(lowered, b"\r\ntransfer-encoding:") or b""):
        body_bytes = CHUNKED
    else:
        length = _header(lowered, b"\r\ncontent-length:")
        if length is None:
            body_bytes = UNTIL_CLOSE
            close = True
        elif length.isdigit():
            body_bytes = int(length)
        else:
            raise BadResponse("Content-Length is not a number")
    timing = _header(lowered, b"\r\nserver-timing:")
    return Head(status, body_bytes, close, _header(lowered, b"\r\nx-trace-id:"), app_ms_from(timing))


class ChunkedBody:
    """Walks a chunked body across reads, skipping chunk data without keeping it."""

    __slots__ = ("skip", "trailers")

    def __init__(self) -> None:
        self.skip = 0  # bytes of chunk data (and its CRLF) still to pass over
        self.trailers = False  # the last chunk was seen; trailer lines until a blank one

    def feed(self, data: bytes, pos: int) -> tuple[bool, int]:
        """Consume data[pos:]. (True, end) when the body ended at `end`; (False, pos) when more is
        needed, everything before `pos` consumed (the caller keeps data[pos:], a partial line)."""
        while True:
            if self.skip:
                taken = min(self.skip, len(data) - pos)
                self.skip -= taken
                pos += taken
                if self.skip:
                    return False, pos
            line_end = data.find(b"\r\n", pos)
            if line_end < 0:
                if len(data) - pos > MAX_HEAD_BYTES:
                    raise BadResponse("chunk-size line too long")
                return False, pos
            line = data[pos:line_end]
            pos = line_end + 2
            if self.trailers:
                if not line:
                    return True, pos
                continue
            size = line.split(b";", 1)[0].strip()
            try:
                size_bytes = int(size, 16)
            except ValueError:
                raise BadResponse("bad chunk size") from None
            if size_bytes < 0:
                raise BadResponse("bad chunk size")
            if size_bytes == 0:
                self.trailers = True
            else:
                self.skip = size_bytes + 2  # the data, then its CRLF
