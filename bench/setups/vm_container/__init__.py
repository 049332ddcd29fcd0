"""Containers on a cloud VM: the app in a runc (or crun) container inside the VM's guest.

    app -> namespaces + cgroups of the guest -> guest kernel -> virtual devices (QEMU) -> hypervisor -> host kernel

The stack of ECS on EC2 and of most Kubernetes nodes. It is the vm setup's boot (its boot plan,
serial console, QEMU process, accelerator choice and leftovers), with an initramfs that also holds
the OCI runtime, its libraries and a bundle made from the app's own guest start (its argv,
environment and user: bench.images.guest_runtime): the guest's init mounts cgroup2 and runs `<runtime> create` and
`<runtime> start`, stamping each on the console, so start-up splits into the runtime's phases.
Compared with the VM alone it shows what the container adds on top of a VM.
"""

from __future__ import annotations

from typing import Literal

from bench.errors import SetupError
from bench.setups.base import Instance
from bench.setups.registry import register
from bench.setups.vm import VMOptions, VMSetup


class VMContainerOptions(VMOptions):
    # The OCI runtime inside the guest: Debian's runc (Go) or crun (C). The guest has cgroup v2
    # only, so crun runs there even on a host where it cannot.
    runtime: Literal["runc", "crun"] = "runc"


@register
class VMContainerSetup(VMSetup):
    name = "container-in-vm"
    stack = ("app → namespaces + cgroups of the guest → guest kernel → virtual devices (QEMU) → hypervisor "
             "(KVM or TCG) → host kernel")
    narration = ("the same virtual machine, and inside it the app in a container, as on a cloud VM running "
                 "containers: the guest kernel's namespaces and cgroups separate it, set up by an OCI runtime.")
    explanation = ("The same VM as the vm layer, and inside it the app runs in a container, as a container "
                   "platform on cloud VMs runs it (ECS on EC2, most Kubernetes nodes): an OCI runtime reads a "
                   "bundle and starts the app in new namespaces under a cgroup of the guest kernel. Nothing of the "
                   "runtime stays resident: `create` exits once the container exists and the app is reparented to "
                   "the guest's init, so a request meets only namespaces and cgroups, which add no work to it. "
                   "The container's cost is its start-up (the runtime's create and start, each a fresh process in "
                   "the guest) and the runtime and its libraries in the guest's RAM. Unlike the host container: "
                   "no Docker engine and no shim, no overlayfs (the container's root is the guest's own root, "
                   "read-only) and no seccomp profile.")
    colour = "#E69F00"
    order = 25
    Options = VMContainerOptions
    # runc starts twice in the guest (create, then its init) on top of the VM's boot: under TCG on a
    # loaded 2-core host the first 200 came after 30-40 s (the VM alone: 15-20 s).
    ready_deadline_s = 120.0

    # ---- the vm setup finds and cleans every QEMU layerbench started: nothing twice -------------

    @classmethod
    def find_leftovers(cls) -> list[str]:
        return []

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        return []

    @classmethod
    def doctor_lines(cls) -> list[str]:
        from bench.images import guest_runtime

        return [f"{runtime} in the guest: {guest_runtime.runtime_version(runtime)}" if guest_runtime.find_runtime(
            runtime) else f"{runtime} in the guest: not installed (apt-get install {guest_runtime.PACKAGES[runtime]})"
                for runtime in guest_runtime.RUNTIMES]

    # ---- the declaration of a variant --------------------------------------------------------

    @property
    def runtime(self) -> str:
        return self.options.runtime  # type: ignore[attr-defined]

    def variant(self) -> str:
        return f"{super().variant()},{self.runtime}"

    def explain(self) -> str:
        vm_words = super().explain().removeprefix(self.explanation).strip()  # the accelerator's words
        return f"{self.explanation} Here the runtime is {self.runtime}. {vm_words}".strip()

    def layer_stack(self) -> tuple[str, ...]:
        vm_boxes = super().layer_stack()
        return (*vm_boxes[:-1], f"container engine ({self.runtime} in the guest; namespaces + cgroups)", vm_boxes[-1])

    # ---- preparation and start-up ------------------------------------------------------------

    def prepare(self) -> None:
        from bench.images import guest_runtime

        if guest_runtime.find_runtime(self.runtime) is None:
            raise SetupError(f"{self.runtime} is not installed on the host, so it cannot go into the guest "
                             f"(apt-get install {guest_runtime.PACKAGES[self.runtime]}, or {HOST_SETUP})")
        super().prepare()

    def _guest_boot(self, guest) -> tuple[object, dict[str, bytes]]:
        """The app's own guest start, run by the runtime from a bundle: the one place the app reaches the guest."""
        from bench.images import guest_runtime

        try:
            return guest_runtime.container_guest(guest, self.runtime)
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            raise SetupError(str(error)) from None

    def _facts(self, qemu, port: int, log_path) -> dict:
        from bench.images import guest_runtime

        return {**super()._facts(qemu, port, log_path), "container_runtime": self.runtime,
                "container_runtime_version": guest_runtime.runtime_version(self.runtime)}

    def _split_phases(self, instance: Instance) -> None:
        """kernel_to_init_s, then init_to_runtime_s (modules, network, cgroup2), runtime_create_s
        (`<runtime> create`: the container's namespaces and cgroup), runtime_start_s (`<runtime> start`),
        start_to_app_s (the interpreter and the app's imports), first_200_s (the port answering)."""
        from bench.images.guest_runtime import MARKER_CGROUP, MARKER_CREATE, MARKER_START
        from bench.images.initramfs import MARKER_APP
        from bench.setups.vm.phases import split_phases

        split_phases(instance, (("init_to_runtime_s", MARKER_CGROUP), ("runtime_create_s", MARKER_CREATE),
                                ("runtime_start_s", MARKER_START), ("start_to_app_s", MARKER_APP)))


HOST_SETUP = "sudo scripts/host-setup.sh"
