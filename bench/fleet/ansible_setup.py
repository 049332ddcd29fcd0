"""Where Ansible comes from here: whether it is installed (one line saying how to install it when
not) and which ansible.cfg it reads. Apart from the inventory and the playbook runner, which
both need it, so that neither imports the other."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.errors import LayerbenchError


class AnsibleMissing(LayerbenchError):
    """ansible-runner (layerbench[fleet]) is not installed here."""


def require_ansible() -> None:
    try:
        import ansible  # noqa: F401
        import ansible_runner  # noqa: F401
    except ImportError:
        raise AnsibleMissing(f"several machines need Ansible: {sys.executable} -m pip install 'layerbench[fleet]' "
                             "(ansible-core and ansible-runner)") from None


def ansible_config(explicit: bool, cwd: Path | None = None) -> str:
    """The ansible.cfg Ansible reads, as its own search would find it, except that ./ansible.cfg
    counts only beside an inventory the user named (a cloned repository's could load plugins)."""
    if os.environ.get("ANSIBLE_CONFIG"):
        return os.environ["ANSIBLE_CONFIG"]
    here = Path(cwd or Path.cwd()) / "ansible.cfg"
    for candidate in ([here] if explicit else []) + [Path.home() / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")]:
        if candidate.is_file():
            return str(candidate)
    return str(Path(__file__).resolve().parent / "playbooks" / "empty.cfg")
