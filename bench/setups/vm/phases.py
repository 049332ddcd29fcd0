"""Start-up phases of a boot, from the console markers the guest's init prints (host time when seen).

launch_s (QEMU spawned) and kernel_to_init_s (QEMU + guest kernel, up to /init) come first; then
one phase per step, each ending at its marker; first_200_s keeps what is left (the forwarded port
answering). With launch_s they sum to launch -> first 200, as the unsplit figure did.
"""

from __future__ import annotations

from bench.images.initramfs import MARKER_APP, MARKER_INIT
from bench.setups.base import Instance

# The VM alone: init loads the modules, brings the network up and starts the interpreter.
VM_STEPS = (("init_to_app_s", MARKER_APP),)


def split_phases(instance: Instance, steps: tuple[tuple[str, str], ...] = VM_STEPS) -> None:
    """Split the instance's first_200_s at the console markers of `steps` ((phase name, marker) in
    order, the last one the app's); the unsplit figure stays when a marker is missing."""
    qemu = instance.handle
    # The console and the network are separate paths out of QEMU: give the last marker a moment.
    qemu.serial.wait_for(steps[-1][1], 1.0, qemu.popen)
    marks = qemu.serial.marks
    times = [marks.get(MARKER_INIT), *(marks.get(marker) for _, marker in steps)]
    if any(at is None for at in times):  # markers missing (odd init): keep the unsplit figure
        return
    first_200_s = instance.phases.pop("first_200_s")
    split = {"kernel_to_init_s": max(0.0, times[0] - qemu.spawned_at)}
    for (name, _), began, ended in zip(steps, times, times[1:]):
        split[name] = max(0.0, ended - began)
    instance.phases.update(split)
    instance.phases["first_200_s"] = max(0.0, first_200_s - sum(split.values()))
    uptimes = qemu.serial.guest_uptime_s
    instance.facts["guest_uptime_at_init_s"] = uptimes.get(MARKER_INIT)
    instance.facts["guest_uptime_at_app_s"] = uptimes.get(MARKER_APP)
