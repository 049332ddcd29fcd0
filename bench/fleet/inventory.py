"""The hosts of a fleet come from an Ansible inventory (INI or YAML, groups, host and group vars),
read by Ansible's own inventory code, so `--hosts` and `--limit` mean what they mean to
ansible-playbook. `local` is this machine, never an inventory host.

    bench run quick --inventory lab.yml --hosts labs,local --limit '!lab3'

Which file: `--inventory FILE` (or $LAYERBENCH_INVENTORY) names it; without either, the first of
./inventory.yml, ./inventory.yaml, ./inventory.ini found is used. A file found that way may come
with a repository somebody cloned, so it may not run anything on this machine: no `*Command` ssh
option (ProxyCommand, LocalCommand, KnownHostsCommand, ...), no `-F` config of its own, no other
ssh executable or connection plugin, no template (a lookup runs here). A file named explicitly,
and the user's own ~/.ssh/config, may do all of that (see bench.fleet.guard).

Extra host vars layerbench reads: `layerbench_address` (the IPv4 address the other hosts reach
this one at, for a split run), `layerbench_python` (the interpreter for its venv, default python3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bench.fleet import guard, legacy
from bench.fleet.ansible_setup import ansible_config, require_ansible
from bench.fleet.inventory_error import ENV_PATH, InventoryError

LOCAL = "local"
DEFAULT_FILES = ("inventory.yml", "inventory.yaml", "inventory.ini")
MAX_HOSTS = 64


@dataclass(frozen=True)
class FleetHost:
    """One host of a fleet, as messages and fleet.json name it."""

    name: str
    target: str  # user@host:port as a person writes it, or "this machine"
    address: str | None = None  # layerbench_address
    vars: dict = field(default_factory=dict, compare=False, repr=False)  # its inventory vars, untemplated

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL


LOCAL_HOST = FleetHost(LOCAL, "this machine")


def find(path: Path | None = None) -> tuple[Path, bool]:
    """(the inventory file, whether the user named it); InventoryError saying what to do otherwise."""
    named = path or (Path(os.environ[ENV_PATH]) if os.environ.get(ENV_PATH) else None)
    if named is not None:
        if not named.exists():
            raise InventoryError([f"no inventory {named}: write one (see README: Several machines)"])
        legacy.refuse_if_legacy(named)
        return named, True
    for name in DEFAULT_FILES:
        if Path(name).is_file():
            legacy.refuse_if_legacy(Path(name))
            return Path(name), False
    legacy.refuse_if_legacy(legacy.default_path())
    raise InventoryError([f"no inventory: name one with --inventory FILE (an Ansible inventory, INI or YAML) or "
                          f"${ENV_PATH}, or write ./{DEFAULT_FILES[0]}"])


def split_names(text: str | None, flag: str = "--hosts") -> list[str]:
    """The comma-separated terms of --hosts; InventoryError when they name nothing (",")."""
    terms = [part.strip() for part in (text or "").split(",")]
    if text is not None and not any(terms):
        raise InventoryError([f"{flag} {text!r} names nothing: give host or group names, e.g. labs,local"])
    return [term for term in terms if term]


class Inventory:
    """An inventory read with Ansible's InventoryManager, its vars with Ansible's VariableManager."""

    def __init__(self, path: Path, explicit: bool):
        self.path = Path(path)
        self.explicit = explicit

    @cached_property
    def _ansible(self):
        require_ansible()  # one line saying how to install it, not an ImportError
        os.environ.setdefault("ANSIBLE_CONFIG", ansible_config(self.explicit))
        os.environ.setdefault("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")  # we say it, in one line
        from ansible import constants
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager

        loader = DataLoader()
        if constants.DEFAULT_VAULT_PASSWORD_FILE:  # vaulted vars read as ansible-playbook reads them
            from ansible.cli import CLI

            CLI.setup_vault_secrets(loader, vault_ids=constants.DEFAULT_VAULT_IDENTITY_LIST,
                                    vault_password_files=[constants.DEFAULT_VAULT_PASSWORD_FILE])
        try:
            manager = InventoryManager(loader=loader, sources=[str(self.path)])
        except AnsibleError as error:
            raise InventoryError([f"{self.path}: {_one_line(error)}"]) from None
        if not manager.list_hosts("all"):
            raise InventoryError([f"{self.path}: Ansible found no host in it (is it an inventory?)"])
        return manager, VariableManager(loader=loader, inventory=manager), loader

    def names(self, pattern: str, limit: str | None = None) -> list[str]:
        """Host names matching an Ansible host pattern (within --limit), in Ansible's order."""
        manager = self._ansible[0]
        manager.subset(limit)
        try:
            return [host.name for host in manager.get_hosts(pattern)]
        finally:
            manager.remove_restriction()
            manager.subset(None)

    def host_vars(self, name: str) -> dict:
        """The host's vars as `ansible-inventory --host` gives them: host, group and inventory vars, untemplated."""
        manager, variables, _ = self._ansible
        found = variables.get_vars(host=manager.get_host(name))
        return {key: value for key, value in found.items() if key not in _MAGIC}

    def rendered(self, name: str) -> dict:
        """The host's vars with their templates rendered (for the direct ssh channel of a split run)."""
        from ansible.template import Templar

        _, variables, loader = self._ansible
        found = variables.get_vars(host=self._ansible[0].get_host(name))
        templar = Templar(loader=loader, variables=found)
        return {key: templar.template(value) for key, value in found.items() if key.startswith(("ansible_",
                                                                                                  "layerbench_"))}

    def host(self, name: str) -> FleetHost:
        found = self.host_vars(name)
        user = found.get("ansible_user") or found.get("ansible_ssh_user")
        port = found.get("ansible_port") or found.get("ansible_ssh_port")
        where = found.get("ansible_host") or name
        target = f"{str(user) + '@' if user else ''}{where}{':' + str(port) if port else ''}"
        address = found.get("layerbench_address")
        return FleetHost(name, target, str(address) if address else None, found)

    def select(self, terms: list[str], limit: str | None = None) -> list[FleetHost]:
        """The hosts `--hosts` names (hosts, groups or patterns, and `local`), within `--limit`,
        in the order given; InventoryError for a term that names nothing or a host named twice."""
        if LOCAL in self.names("all"):
            raise InventoryError([f"{self.path}: a host is called {LOCAL!r}; `local` always means this machine "
                                  "here: rename it"])
        chosen, problems = [], []
        limit_terms = split_names(limit, "--limit") if limit is not None else None
        remote_limit = None if limit_terms is None else ",".join(term for term in limit_terms if term != LOCAL)
        for term in terms:
            if term == LOCAL:
                if limit_terms is None or LOCAL in limit_terms or "all" in limit_terms:
                    chosen.append(LOCAL)
                continue
            if not self.names(term):
                problems.append(f"--hosts: {term!r} names no host or group in {self.path} ({self.known()})")
                continue
            if remote_limit != "":  # a --limit of `local` alone leaves no inventory host
                chosen += self.names(term, remote_limit)
        if problems:
            raise InventoryError(problems)
        unique = list(dict.fromkeys(chosen))
        if not unique:
            raise InventoryError([f"--hosts {','.join(terms)} --limit {limit}: no host is left"])
        if len(unique) > MAX_HOSTS:
            raise InventoryError([f"--hosts names {len(unique)} hosts; at most {MAX_HOSTS}"])
        hosts = [LOCAL_HOST if name == LOCAL else self.host(name) for name in unique]
        if not self.explicit:
            guard.refuse_commands(hosts, self.path)
        return hosts

    def known(self) -> str:
        manager = self._ansible[0]
        groups = sorted(name for name in manager.groups if name not in ("all", "ungrouped"))
        hosts = self.names("all")
        return (f"groups: {', '.join(groups[:10]) or 'none'}; hosts: {', '.join(hosts[:10])}"
                f"{', ...' if len(hosts) > 10 else ''}; and local")


# Vars Ansible adds to every host; they are not the inventory's.
_MAGIC = {"ansible_facts", "ansible_playbook_python", "ansible_config_file", "ansible_version", "inventory_file",
          "inventory_dir", "inventory_hostname", "inventory_hostname_short", "group_names", "groups", "omit",
          "playbook_dir", "ansible_check_mode", "ansible_diff_mode", "ansible_forks", "ansible_inventory_sources",
          "ansible_verbosity", "ansible_run_tags", "ansible_skip_tags", "ansible_limit", "ansible_dependent_role_names",
          "ansible_play_role_names", "ansible_role_names"}


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(error).__name__


def select(hosts: str | None, limit: str | None = None,
           path: Path | None = None) -> tuple[list[FleetHost], Inventory | None]:
    """`--hosts`/`--limit`/`--inventory` -> the fleet's hosts and their inventory (None when only
    `local` is named: no inventory is read)."""
    terms = split_names(hosts)
    if len(set(terms)) != len(terms):
        raise InventoryError([f"--hosts names a host twice: {', '.join(terms)}"])
    if terms == [LOCAL] and limit is None and path is None:
        return [LOCAL_HOST], None
    inventory = Inventory(*find(path))
    return inventory.select(terms, limit), inventory
