"""Scenario YAML, read and parsed in bounded memory and time.

A scenario is a few hundred bytes of YAML written by a person, yet a hostile or unlucky file can be
endless (/dev/zero), huge (tens of MB take PyYAML minutes), or an alias bomb: a few lines that stand
for billions of values once anything walks them as a tree (validation does). So: the size is
checked before parsing, aliases and the values they stand for are counted while composing, and the
field -> line index walks each node once, never through an alias again.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.resolver import Resolver

from bench.errors import ScenarioError

try:  # libyaml's parser: the same events as PyYAML's own, several times sooner
    from yaml.cyaml import CParser
except ImportError:
    CParser = None

# The largest scenario the schema allows (every list and string at its maximum, 4096-CPU pinning
# lists included) is 102 KB in block style and 10683 values: both limits leave it room. Parsing
# 12000 values takes about 0.25 s in pure Python here, 0.05 s with libyaml's events, so the value
# limit bounds the time as well (medians of 7 on this 2-core machine; whole-CLI figures from
# tools/hostile_input_check.py).
MAX_BYTES = 256 * 1024
MAX_NODES = 12_000  # values, counting each alias as a full copy of what it names: what validation walks
MAX_ALIASES = 256  # uses of *name; 64 workloads sharing a few anchors need far fewer
MAX_DEPTH = 32  # a scenario nests about 5 deep; this stops long before Python's recursion limit
# A FIFO or terminal may never send anything, or never stop: wait this long for the whole file (a
# pipe from a generator that is that slow can go through a file), so the answer still comes in 2 s.
READ_DEADLINE_S = 0.5


def _scenario_error(problem: str):

    return ScenarioError([problem])


class _Refused(MarkedYAMLError):
    """Valid YAML that a scenario may not be: too big, too deep, self-referring, duplicate keys."""

    def __init__(self, problem: str, mark):
        super().__init__(problem=problem, problem_mark=mark)


class _Bounds:
    """A composer that counts what aliases expand to and refuses duplicate keys (mixed into a loader)."""

    def _start_counting(self) -> None:
        self._aliases_used = 0
        self._expanded_nodes = 0  # nodes so far, each alias counted as the size of its target
        self._depth = 0
        self._anchored_size: dict[int, int] = {}  # id(anchored node) -> its expanded size, once complete

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # refuses an undefined alias
            self._count_alias(node, event)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        first = self._expanded_nodes
        self._grow(1, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if event.anchor is not None:
            self._anchored_size[id(node)] = self._expanded_nodes - first
        return node

    def _count_alias(self, node, event) -> None:
        self._aliases_used += 1
        if self._aliases_used > MAX_ALIASES:
            raise _Refused(f"more than {MAX_ALIASES} aliases (*name)", event.start_mark)
        size = self._anchored_size.get(id(node))
        if size is None:  # the anchor's node is still open: the alias would be inside itself
            raise _Refused(f"alias *{event.anchor[:40]} refers to a value that contains it", event.start_mark)
        self._grow(size, event.start_mark)

    def _grow(self, nodes: int, mark) -> None:
        self._expanded_nodes += nodes
        if self._expanded_nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} values, counting each alias as all it stands for", mark)

    def compose_mapping_node(self, anchor):
        # PyYAML lets the last of two equal keys win in silence; a scenario refuses the second.
        node = super().compose_mapping_node(anchor)
        first_line: dict[tuple, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue  # a list or mapping as a key is refused later, as unhashable
            identity = (key.tag, key.value)
            if identity in first_line:
                raise _Refused(f"duplicate key {key.value[:60]!r} (first at line {first_line[identity]})",
                               key.start_mark)
            first_line[identity] = key.start_mark.line + 1
        return node


class BoundedLoader(_Bounds, yaml.SafeLoader):
    """SafeLoader (no python/* tags, all in Python) within the bounds above."""

    def __init__(self, stream):
        super().__init__(stream)
        self._start_counting()


if CParser is not None:
    class FastBoundedLoader(_Bounds, Composer, CParser, SafeConstructor, Resolver):
        """The same as BoundedLoader, with events from libyaml: PyYAML's Python composer (listed first)
        composes them, so every bound above still applies. 5 to 6 times faster at the value limit."""

        def __init__(self, stream):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_counting()

LOADER = FastBoundedLoader if CParser is not None else BoundedLoader


def _read_capped(fd: int, label: str) -> bytes:
    """At most MAX_BYTES + 1 bytes, within READ_DEADLINE_S even from a pipe that never writes."""
    chunks: list[bytes] = []
    size = 0
    give_up = time.monotonic() + READ_DEADLINE_S
    readable = select.poll()  # not select.select: that fails for a descriptor numbered past 1023
    readable.register(fd, select.POLLIN)
    while size <= MAX_BYTES:
        left = give_up - time.monotonic()
        if left <= 0:
            raise _scenario_error(f"{label}: cannot read: the input did not end within {READ_DEADLINE_S:g} s")
        if not readable.poll(left * 1000):
            continue
        try:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
        except BlockingIOError:  # select saw data that another reader took first
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_text(path: Path) -> str:
    """A scenario file's text, refused past MAX_BYTES before any of it is parsed."""
    label = str(path)
    try:
        # O_NONBLOCK: opening a FIFO that has no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise _scenario_error(f"{label}: cannot read: {error.strerror or error}") from None
    try:
        declared = os.fstat(fd).st_size  # regular files say their size: refuse without reading
        if declared > MAX_BYTES:
            raise _scenario_error(f"{label}: {_too_big(declared)}")
        data = _read_capped(fd, label)
    except OSError as error:  # a directory, or a device that refuses reads
        raise _scenario_error(f"{label}: cannot read: {error.strerror or error}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise _scenario_error(f"{label}: {_too_big(None)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _scenario_error(f"{label}: cannot read: not UTF-8 text (byte {error.start})") from None


def _too_big(size_bytes: int | None) -> str:
    limit = f"the {MAX_BYTES // 1024} KiB a scenario may be"
    return f"{size_bytes / 1e6:.1f} MB, more than {limit}" if size_bytes else f"more than {limit}"


def load(text: str, source: str, loader_class: type = LOADER) -> tuple[Any, yaml.Node | None]:
    """(data, root node) of scenario YAML text; ScenarioError (one line) for anything refused."""
    size_bytes = len(text) if len(text) > MAX_BYTES else len(text.encode("utf-8", "replace"))
    if size_bytes > MAX_BYTES:
        raise _scenario_error(f"{source}:?: {_too_big(size_bytes)}")
    try:
        loader = loader_class(text)  # its reader refuses control characters at once
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _Refused as error:
        raise _scenario_error(f"{source}:{error.problem_mark.line + 1}: {error.problem}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        # "expected a single document", "but found another": the context makes the problem readable
        said = [part for part in (getattr(error, "context", None), getattr(error, "problem", None)) if part]
        problem = " ".join((", ".join(said) or str(error)).split())  # ReaderError's text spans lines
        raise _scenario_error(f"{source}:{line}: not valid YAML: {problem}") from None
    except ValueError as error:  # an integer of more than 4300 digits (int() refuses to convert it)
        raise _scenario_error(f"{source}:?: not a usable value: {str(error)[:120]}") from None
    return data, root


def line_index(root: yaml.Node | None) -> dict[tuple, int]:
    """Field path -> 1-based line. Each node is walked once: a path through an alias ends at the alias."""
    lines: dict[tuple, int] = {}
    walked: set[int] = set()
    stack = [(root, ())] if root is not None else []
    while stack and len(walked) < MAX_NODES:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, child in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines.setdefault(path + (key.value,), key.start_mark.line + 1)
                    stack.append((child, path + (key.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, path + (index,)) for index, child in enumerate(node.value))
    return lines
