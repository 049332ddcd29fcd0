"""The generator's memory of replies it has parsed, so that a reply seen before is not parsed again:
~1 us of Python per reply (~3 us with a trace id) instead of ~9 us, which is what limits it.

A server's replies to the same request are byte-identical (nginx) until its Date header ticks:
those are kept whole ("plain"). layerbench's own app echoes each request's trace id and says how
long it worked (Server-Timing), so its replies differ only there: those are kept with both cut
out ("traced"), and a new reply matches when it is the same with this request's echo and any
duration. Only small whole successes are kept (2xx, keep-alive, length known); everything else is
parsed every time.
"""

from __future__ import annotations

from bench.load.http1 import HEAD_END, Head
from bench.load.spec import TRACE_HEADER

TRACE_ECHO = f"\r\n{TRACE_HEADER}: ".encode()  # the echo of our trace id, spelled as layerbench's app spells it
_APP_DURATION = b"\r\nServer-Timing: app;dur="
_MAX_REMEMBERED = 64  # replies of each kind; all are forgotten when full (a Date header ticks every second)
_MAX_REMEMBERED_BYTES = 4096  # only small replies are worth keeping


class KnownReplies:
    """Whole successes seen on one event loop's connections."""

    __slots__ = ("plain", "traced")

    def __init__(self) -> None:
        self.plain: dict[bytes, float] = {}  # reply -> its Server-Timing app ms (NaN without one)
        self.traced: set[bytes] = set()  # replies with the trace id echo and the app duration cut out

    def traced_app_ms(self, reply: bytes, echo: bytes) -> float | None:
        """The app duration of `reply` when it is a traced one seen before (`echo`: the echo of the
        trace id of the request in flight, CRLF included); None when it must be parsed. (A plain one
        is looked up in `plain` directly: that lookup is the whole fast path for nginx.)"""
        if not self.traced:
            return None
        cut = _traced_key(reply, echo)
        return cut[1] if cut is not None and cut[0] in self.traced else None

    def remember(self, reply: bytes, head: Head, echo: bytes) -> None:
        """Keep a whole reply just parsed as `head`, if it is a small success of a kind kept."""
        if (len(reply) > _MAX_REMEMBERED_BYTES or not 200 <= head.status < 300 or head.close
                or head.body_bytes < 0):
            return
        if head.trace_id is None:
            if len(self.plain) >= _MAX_REMEMBERED:
                self.plain.clear()
            self.plain[reply] = head.app_ms
            return
        cut = _traced_key(reply, echo)
        if cut is not None and cut[1] == head.app_ms:  # the duration cut out is the one parsed
            if len(self.traced) >= _MAX_REMEMBERED:
                self.traced.clear()
            self.traced.add(cut[0])


def _traced_key(reply: bytes, echo: bytes) -> tuple[bytes, float] | None:
    """(reply with its trace id echo and its Server-Timing app duration cut out, that duration);
    None unless the head holds both, each once, spelled as layerbench's app writes them."""
    head_end = reply.find(HEAD_END)
    at = reply.find(echo)
    if not 0 <= at < head_end or reply.find(echo, at + 1) >= 0:
        return None
    rest = reply[:at] + reply[at + len(echo) - 2:]  # keep one CRLF where the echo was
    start = rest.find(_APP_DURATION)
    if not 0 <= start < head_end - (len(echo) - 2):
        return None
    start += len(_APP_DURATION)
    end = rest.find(b"\r\n", start)
    try:
        duration_ms = float(rest[start:end])
    except ValueError:
        return None
    return rest[:start] + rest[end:], duration_ms
