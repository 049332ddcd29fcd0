"""layerbench's own hosts file (hosts.yaml, before fleets ran on Ansible) is refused with the
command that turns it into an inventory, and that command:

    hosts:                                     all:
      lab1: {host: 10.0.0.11, user: bench,  ->   hosts:
             port: 2222, key: ~/.ssh/k}            lab1: {ansible_host: 10.0.0.11, ansible_user: bench,
                                                          ansible_port: 2222, ansible_ssh_private_key_file: ~/.ssh/k}
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml

from bench.fleet.inventory_error import InventoryError

LEGACY_FIELDS = {"host": "ansible_host", "user": "ansible_user", "port": "ansible_port",
                 "key": "ansible_ssh_private_key_file", "address": "layerbench_address",
                 "python": "layerbench_python"}
ENV_PATH = "LAYERBENCH_HOSTS"


def default_path() -> Path:
    return Path(os.environ.get(ENV_PATH) or "hosts.yaml")


def _read(path: Path):
    try:
        return yaml.safe_load(path.read_text()[:1_000_000])
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def is_legacy(path: Path) -> bool:
    """Whether `path` is a layerbench hosts file: `hosts:` mapping names to {host, user, port, ...}."""
    data = _read(path) if Path(path).is_file() and Path(path).suffix in (".yaml", ".yml") else None
    hosts = data.get("hosts") if isinstance(data, dict) and set(data) == {"hosts"} else None
    return isinstance(hosts, dict) and bool(hosts) and all(
        isinstance(fields, dict) and set(fields) <= {*LEGACY_FIELDS, "options"} for fields in hosts.values())


def refuse_if_legacy(path: Path) -> None:
    if is_legacy(path):
        raise InventoryError([f"{path} is a layerbench hosts file; fleets now read Ansible inventories. Convert "
                              f"it once: bench hosts convert {path} > inventory.yml, then --inventory inventory.yml"])


def convert(path: Path) -> str:
    """The inventory (YAML) that says what the hosts file said; every host in group `all`."""
    if not is_legacy(path):
        raise InventoryError([f"{path} is not a layerbench hosts file (hosts: name -> {{host, user, port, key}})"])
    hosts = {}
    for name, fields in _read(path)["hosts"].items():
        converted = {LEGACY_FIELDS[key]: value for key, value in fields.items() if key in LEGACY_FIELDS}
        options = fields.get("options") or {}
        if options:
            converted["ansible_ssh_common_args"] = " ".join(f"-o {shlex.quote(f'{key}={value}')}"
                                                            for key, value in options.items())
        hosts[str(name)] = converted
    return yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False, default_flow_style=False)
