"""The hosts file: where each named host is and how to log in, as in an SSH config or an Ansible
inventory. YAML, read with the scenario's bounded loader; every problem is one line naming the
file, the line and the field.

    hosts:
      lab1: {host: 192.168.1.11, user: bench, key: ~/.ssh/lab_ed25519}
      lab2: {host: lab2.example.org, user: bench, port: 2222, address: 192.168.1.12}

`local` names this machine and needs no entry. Optional fields: `address` (the IPv4 address the
other hosts reach this one at, for a split run; default: worked out from the route), `python`
(the interpreter to build the venv with, default python3) and `options` (extra OpenSSH options,
e.g. {StrictHostKeyChecking: accept-new}).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench import scenario_yaml
from bench.errors import ProblemsError, ScenarioError

LOCAL = "local"
DEFAULT_PATH = Path("hosts.yaml")
ENV_PATH = "LAYERBENCH_HOSTS"  # a hosts file path, when --hosts-file is not given
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Nothing that ssh could read as an option (a leading '-') or that a shell would split.
HOST_PATTERN = r"^[A-Za-z0-9_.:\[\]%][A-Za-z0-9_.:\[\]%-]{0,252}$"
USER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
PYTHON_PATTERN = r"^[A-Za-z0-9_./+-]{1,200}$"
OPTION_NAME = r"^[A-Za-z][A-Za-z0-9]{0,63}$"
MAX_HOSTS = 64


class HostsFileError(ProblemsError):
    """The hosts file is missing or wrong; one line per problem, naming file and line."""


class HostEntry(BaseModel):
    """One host: how to reach it over ssh, and what to call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    host: str
    user: str | None = Field(default=None, pattern=USER_PATTERN)
    port: int | None = Field(default=None, ge=1, le=65535)
    key: Path | None = None
    address: str | None = Field(default=None, pattern=r"^[0-9.]{7,15}$")
    python: str = Field(default="python3", pattern=PYTHON_PATTERN)
    options: dict[str, str | int] = Field(default_factory=dict, max_length=32)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        import re

        if not re.match(HOST_PATTERN, value):
            raise ValueError("must be a host name or an IP address (letters, digits, . : - _; not starting with -)")
        return value

    @field_validator("key")
    @classmethod
    def _key_exists(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        path = Path(os.path.expanduser(str(value)))
        if not path.is_file():
            raise ValueError(f"no such key file: {path}")
        return path

    @field_validator("options")
    @classmethod
    def _plain_options(cls, value: dict) -> dict:
        import re

        for name, setting in value.items():
            if not re.match(OPTION_NAME, name):
                raise ValueError(f"option {name[:40]!r} is not an OpenSSH option name")
            if not str(setting).isprintable() or not str(setting).strip() or len(str(setting)) > 300:
                raise ValueError(f"option {name}: the value must be one short printable line")
        return value

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def target(self) -> str:
        """user@host:port as a person would write it (for messages)."""
        if self.is_local:
            return "this machine"
        return f"{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port else ''}"


LOCAL_HOST = HostEntry(name=LOCAL, host="localhost")


def default_path() -> Path:
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def parse_hosts(text: str, source: str) -> dict[str, HostEntry]:
    """Hosts file text -> entries by name; HostsFileError with one line per problem."""
    try:
        data, root = scenario_yaml.load(text, source)
    except ScenarioError as error:
        raise HostsFileError(error.problems) from None
    lines = scenario_yaml.line_index(root)
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(data, dict) or set(data) != {"hosts"} or not isinstance(hosts, dict) or not hosts:
        raise HostsFileError([f"{source}:1: a hosts file is a mapping `hosts:` of name -> {{host, user, port, key}}"])
    if len(hosts) > MAX_HOSTS:
        raise HostsFileError([f"{source}:1: more than {MAX_HOSTS} hosts"])
    entries, problems = {}, []
    for name, fields in hosts.items():
        where = f"{source}:{lines.get(('hosts', name), '?')}"
        if str(name) == LOCAL:
            problems.append(f"{where}: {LOCAL}: reserved: `local` always means this machine")
            continue
        if not isinstance(fields, dict):
            problems.append(f"{where}: {str(name)[:60]}: expected a mapping with host, user, port, key")
            continue
        if "name" in fields:
            problems.append(f"{where}: {str(name)[:60]}.name: unknown field (the key above is the name)")
            continue
        try:
            entries[str(name)] = HostEntry.model_validate({"host": str(name), **fields, "name": str(name)})
        except ValidationError as error:
            problems += _messages(error, source, ("hosts", name), lines)
    if problems:
        raise HostsFileError(problems)
    return entries


def _messages(error: ValidationError, source: str, prefix: tuple, lines: dict[tuple, int]) -> list[str]:
    problems = []
    for item in error.errors():
        location = tuple(item["loc"])
        line = lines.get(prefix + location[:1]) or lines.get(prefix, "?")
        field = ".".join(str(part)[:60] for part in location) or "(entry)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (known: host, user, port, key, address, python, options)"
        found = item.get("input")
        if (item["type"] not in ("missing", "extra_forbidden") and isinstance(found, (str, int, float))
                and str(found) not in message):
            message += f" (got {str(found)[:60]!r})"
        problems.append(f"{source}:{line}: {str(prefix[-1])[:60]}.{field}: {message}")
    return problems


def load_hosts(path: Path | None = None) -> dict[str, HostEntry]:
    """The hosts file's entries by name (default ./hosts.yaml, or $LAYERBENCH_HOSTS)."""
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        raise HostsFileError([f"no hosts file {path}: write one (see README: Several machines) or give --hosts-file"])
    try:
        text = scenario_yaml.read_text(path)
    except ScenarioError as error:
        raise HostsFileError(error.problems) from None
    return parse_hosts(text, str(path))


def pick(names: list[str], path: Path | None = None) -> list[HostEntry]:
    """The entries `names` asks for, in that order; `local` is this machine. Reads the file only
    when a name other than `local` is asked for."""
    if len(set(names)) != len(names):
        raise HostsFileError([f"--hosts names a host twice: {', '.join(names)}"])
    entries = load_hosts(path) if any(name != LOCAL for name in names) else {}
    unknown = [name for name in names if name != LOCAL and name not in entries]
    if unknown:
        known = ", ".join([LOCAL, *entries])
        raise HostsFileError([f"no host {unknown[0]!r} in {path or default_path()} (known: {known})"])
    return [LOCAL_HOST if name == LOCAL else entries[name] for name in names]
