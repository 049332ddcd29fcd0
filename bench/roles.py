"""The roles a host process can play in a setup: one vocabulary for the sampler, the setups, the
tables and the charts, which stack CPU and memory by role.

A setup names the roles it reports (`Setup.roles`); a new kind of process (a sandbox's user-space
kernel, say) is a new `Role` declared next to the setup that has it. The standard roles here are
generic (a proxy, a hypervisor); a setup names which program plays one (`dataclasses.replace` with
its own label: docker-proxy, QEMU). Runs store the roles they used, so outputs never need this
module to know a role.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Role:
    """How one kind of host process is named and drawn."""

    key: str
    label: str  # words for a legend or a table
    colour: str
    # True when the app runs inside this process (QEMU): the app's own view from inside then
    # splits its memory into the app and `remainder_label` (guest kernel + devices).
    contains_app: bool = False
    remainder_label: str = ""
    remainder_colour: str = "#E69F00"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Role":
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)


APP = Role("app", "app", "#4d4d4d")
RUNTIME = Role("runtime", "container runtime (shim)", "#0072B2")
PROXY = Role("proxy", "userland proxy (published port)", "#56B4E9")
HYPERVISOR = Role("hypervisor", "hypervisor process (guest + devices)", "#D55E00", contains_app=True,
                  remainder_label="guest kernel + devices")
ROLE_APP, ROLE_RUNTIME, ROLE_PROXY, ROLE_HYPERVISOR = APP.key, RUNTIME.key, PROXY.key, HYPERVISOR.key
STANDARD = {role.key: role for role in (APP, RUNTIME, PROXY, HYPERVISOR)}

# The runner process itself (built-in load generator + sampler): sampled, never part of a setup.
ROLE_LOADGEN = "loadgen"


@dataclass(frozen=True)
class RoleProcess:
    """One host process that a running setup costs, with the role it plays."""

    role: str
    process: Any  # a psutil.Process (typed loosely so this module imports nothing)
