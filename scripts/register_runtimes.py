#!/usr/bin/env python3
"""Register OCI runtimes in Docker's daemon.json by merging, never overwriting the rest of the file.
Product set-up: scripts/host-setup.sh runs it (as root) for crun and gVisor's runsc.

    register_runtimes.py /etc/docker/daemon.json \
        '{"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}}'

Every other key of the file, and every other runtime under "runtimes", is kept as it was. An
entry of the same name is replaced (and the old one printed), since asking for it is the point.
A file that is not a JSON object is refused (exit 2) and left untouched: dockerd would not start
with it either, and guessing what its owner meant is not ours to do. Stdlib only: it runs with the
system python3 from scripts/host-setup.sh, before any venv exists.

Prints one line per runtime and exits 0 when the file holds the runtimes (changed or not); the
last line is "changed" or "unchanged", so the caller knows whether dockerd needs a reload.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

EXIT_REFUSED = 2
EXIT_USAGE = 64


class Refused(Exception):
    """The config file cannot be merged safely; its text is the one-line reason."""


def merge_runtimes(config: dict, wanted: dict[str, dict]) -> tuple[dict, list[str]]:
    """(new config, one line per runtime) with wanted merged into config["runtimes"]; config is not changed."""
    runtimes = config.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise Refused(f'"runtimes" is a {type(runtimes).__name__}, not an object')
    merged_runtimes = dict(runtimes)
    lines = []
    for name, entry in wanted.items():
        old = runtimes.get(name)
        if old == entry:
            lines.append(f"{name}: already registered")
        elif old is None:
            lines.append(f"{name}: added {json.dumps(entry)}")
        else:
            lines.append(f"{name}: replaced {json.dumps(old)} with {json.dumps(entry)}")
        merged_runtimes[name] = entry
    merged = dict(config)
    merged["runtimes"] = merged_runtimes
    return merged, lines


def validate_wanted(wanted: object) -> dict[str, dict]:
    """The runtimes argument, checked: {name: {"path": absolute path, "runtimeArgs": [str, ...]}}."""
    if not isinstance(wanted, dict) or not wanted:
        raise ValueError("runtimes must be a non-empty JSON object {name: {path, runtimeArgs}}")
    for name, entry in wanted.items():
        if not isinstance(entry, dict) or not str(entry.get("path", "")).startswith("/"):
            raise ValueError(f"runtime {name!r} needs an absolute \"path\"")
        unknown = set(entry) - {"path", "runtimeArgs"}
        if unknown:
            raise ValueError(f"runtime {name!r} has keys dockerd 20.10 does not know: {sorted(unknown)}")
        args = entry.get("runtimeArgs", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise ValueError(f"runtime {name!r}: runtimeArgs must be a list of strings")
    return wanted  # type: ignore[return-value]


def read_config(path: Path) -> dict:
    """The file's JSON object; {} when it is missing or empty. Refused when it cannot be merged."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise Refused(f"cannot read {path}: {error.strerror}") from None
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as error:
        raise Refused(f"{path} is not valid JSON ({error}); fix it by hand, it was left untouched") from None
    if not isinstance(config, dict):
        raise Refused(f"{path} holds a JSON {type(config).__name__}, not an object; it was left untouched")
    return config


def write_config(path: Path, config: dict) -> None:
    """Replace the file atomically (temp file in the same folder, then rename), keeping its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle, temp_name = tempfile.mkstemp(prefix=".daemon.json.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(config, out, indent=2)
            out.write("\n")
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def register(path: Path, wanted: dict[str, dict]) -> tuple[bool, list[str]]:
    """Merge wanted into the daemon.json at path; (whether the file changed, one line per runtime)."""
    config = read_config(path)
    merged, lines = merge_runtimes(config, validate_wanted(wanted))
    if merged == config and path.exists():
        return False, lines
    write_config(path, merged)
    return True, lines


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} DAEMON_JSON RUNTIMES_JSON", file=sys.stderr)
        return EXIT_USAGE
    try:
        changed, lines = register(Path(argv[1]), validate_wanted(json.loads(argv[2])))
    except Refused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except ValueError as error:
        print(f"bad runtimes argument: {error}", file=sys.stderr)
        return EXIT_USAGE
    for line in lines:
        print(line)
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
