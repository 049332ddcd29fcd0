"""What an inventory that nobody named may not do: run a command on this machine.

OpenSSH runs a local command for ProxyCommand, LocalCommand (with PermitLocalCommand),
KnownHostsCommand and the like; `-F FILE` brings a whole config with its own; Ansible runs another
program for `ansible_ssh_executable` or a connection plugin other than ssh, and a template in any
var runs here when it is rendered (`{{ lookup('pipe', ...) }}`). A file found in the current
folder may have come with a repository, so these are refused there, with what to do instead: name
the file (--inventory or $LAYERBENCH_INVENTORY) if it is trusted, or put the option in the user's
own ~/.ssh/config, which is the user's to write.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.fleet.inventory_error import ENV_PATH, InventoryError

# The vars whose words go to ssh's command line (the scp and sftp ones to theirs).
SSH_ARG_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args", "ansible_scp_extra_args",
                "ansible_sftp_extra_args")
RUNS_A_PROGRAM = ("ansible_ssh_executable", "ansible_scp_executable", "ansible_sftp_executable")
COMMAND_OPTION = re.compile(r"(?i)(?:^|[\s'\"]|-o)([a-z]*command)\b")
CONFIG_FILE = re.compile(r"(^|\s)-F")
TEMPLATE = re.compile(r"\{\{|\{%|\{#")


def problems_of(name: str, host_vars: dict) -> list[str]:
    """Why one host's vars could run something here, one reason per var; [] when they cannot."""
    found = []
    for key in SSH_ARG_VARS:
        words = str(host_vars.get(key) or "")
        command = COMMAND_OPTION.search(words)
        if command:
            found.append(f"{name}: {key} sets {command.group(1)}, which runs a command on this machine")
        elif CONFIG_FILE.search(words):
            found.append(f"{name}: {key} gives ssh a config file of its own (-F)")
    for key in RUNS_A_PROGRAM:
        if host_vars.get(key):
            found.append(f"{name}: {key} names a program to run here")
    connection = host_vars.get("ansible_connection")
    if connection and str(connection) not in ("ssh", "smart", "ansible.builtin.ssh"):
        found.append(f"{name}: ansible_connection is {str(connection)[:40]!r}, not ssh")
    for key, value in host_vars.items():
        if _has_template(value):
            found.append(f"{name}: {key} holds a template, which runs here when Ansible renders it")
    return found


def _has_template(value) -> bool:
    if isinstance(value, str):
        return bool(TEMPLATE.search(value))
    if isinstance(value, dict):
        return any(_has_template(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_template(item) for item in value)
    return False


def refuse_commands(hosts, path: Path) -> None:
    """InventoryError listing every host var of an inventory nobody named that could run a command here."""
    found = [problem for host in hosts if not host.is_local for problem in problems_of(host.name, host.vars)]
    if found:
        raise InventoryError([f"{path} (found in the current folder, not named): {problem}" for problem in found]
                             + [f"if you trust {path}, name it: --inventory {path} (or ${ENV_PATH}); or move such "
                                "options to your own ~/.ssh/config"])
