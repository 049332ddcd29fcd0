"""The VM setup: the app as PID 1's child in a QEMU guest booted straight from an initramfs.

    app -> guest kernel -> virtual devices (QEMU) -> hypervisor (KVM or TCG) -> host kernel

No disk image: QEMU boots the guest kernel with `-initrd` holding the app's root filesystem (the
python app's rootfs, nginx's tree, a user's image's files: bench.apps), busybox and an init script
(bench.images.initramfs) that starts the app with its environment and user. Choices measured on a 2-core Debian 12 host, TCG:
- `-machine microvm` booting the uncompressed vmlinux via PVH: ~0.75 s faster than a bzImage
  and ~0.4-0.6 s faster than pc/q35 (no PCI enumeration, no legacy firmware).
- microvm has no HPET/ACPI PM timer, so under host load the guest's TSC calibration against
  the PIT fails and the kernel hangs; the host's TSC rate is passed with `tsc_early_khz`
  (under TCG the guest reads the host TSC).
- `-cpu max` under TCG gives the guest RDRAND: its entropy pool is ready at once, so the
  app's first getrandom does not spin ~1 s in the kernel's jitter-entropy loop.
- `tb-size=32` caps TCG's translation cache (default up to 1 GiB, grows with use): ~50 MB RSS.
- An uncompressed initramfs avoids ~0.45 s of inflating in the guest at the price of ~45 MB
  more QEMU RSS (QEMU keeps a copy of the initrd).
Measured later (same host, shared and noisy: boots interleaved A/B, medians of 4-6, compared on
QEMU's CPU time to the first 200, which the neighbours' load disturbs far less than wall time):
- A sourceless stdlib in the rootfs (legacy pycs, no .py): rootfs 39.7 -> 30.6 MB, initramfs
  41.8 -> 33.0 MB, QEMU RSS 310 -> 283 MB, CPU to first 200 3.88 -> 3.66 s.
- Compressing that initramfs (guest inflates, QEMU maps the smaller file, the guest's copy
  shrinks): lz4 -l -9 14.4 MB, RSS 256 MB, CPU 3.81 s; gzip 12.5 MB, 250 MB, 4.04 s; zstd -19
  10.0 MB, 248 MB, 4.05 s; plain 283 MB, 3.66 s. lz4 is the default (initramfs module).
- QEMU maps -kernel (vmlinux: ~48 MB resident) and -initrd and keeps them only to replay a
  reset. Paging them out after the first 200 (process_madvise(MADV_PAGEOUT); a reset reads them
  back) gave RSS 256 -> 193 MB with lz4 (283 -> 203 MB plain), peak RSS unchanged. On by default
  (release_boot_files: false keeps them, as a VM that may reboot would): an idle
  VM does not need them. The page-out also drops them from the host's page cache, so the next
  boot reads the 57 MB vmlinux from disk again (35-100 ms cold here).
- Guest memory does not drive RSS: -m 160 and -m 256 both gave 283 MB (the guest touches
  ~130 MB either way), so 256 stays; 144 no longer unpacks a plain 33 MB initramfs.
- tb-size=16: RSS -18 MB but CPU to first 200 +0.8 s (init_to_app 1.2 -> 2.0 s, retranslation).
- virtio-balloon free page reporting (module loaded once the app listens) gave back ~12 MB of
  the guest's freed initrd on top of lz4; not adopted: the kernel cache lacks virtio_balloon.ko.
- The guest sees an AMD CPU under TCG (`-cpu max`): no page table isolation to switch off.
KVM is probed with a bounded test boot (nested KVM may hang in the guest kernel) and TCG
is the fallback; every result records which accel ran and why.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from typing import Literal

from pydantic import Field

from bench.app.command import APP_PORT_IN_GUEST
from bench.apps.base import Layer, Place, guest_start
from bench.errors import KernelError, SetupError
from bench.netutil import free_port, port_in_use
from bench.roles import HYPERVISOR, RoleProcess
from bench.setups.base import Instance, Options, Setup
from bench.setups.registry import register
from bench.tool_versions import Tool

# Heavy parts (QEMU process, console, kernel, initramfs) are imported when a VM is prepared or
# launched, so parsing a scenario that names the vm setup loads none of them.

DEFAULT_MEMORY_MB = 256
QEMU_PROCESS = replace(HYPERVISOR, label="QEMU (guest + devices)")  # the hypervisor process is QEMU
QEMU_VERSION = ("qemu-system-x86_64", "--version")  # the binary bench.setups.vm.boot.QEMU runs


class VMOptions(Options):
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    # The kernel (~51 MB loaded), the initramfs and its unpacked copy (~31 MB) share guest RAM: an
    # uncompressed one boots at 160 MB, not at 144 (an lz4 one boots at 128).
    memory_mb: int = Field(DEFAULT_MEMORY_MB, ge=160, le=16384)
    kernel: str | None = None  # path of a bzImage; default: the cached Debian cloud kernel
    vcpus: int = Field(1, ge=1, le=64)
    # On by default: QEMU keeps the kernel and initrd mapped only to replay a reset, which an idle VM
    # never needs; their pages are dropped after the first 200 (~63 MB of RSS). Off keeps them.
    release_boot_files: bool = True
    # A virtio-blk disk (sparse raw file, ext4 made on the host) mounted at the guest's /tmp, so
    # the app's temp files go through guest ext4 -> virtio-blk -> QEMU's block layer -> a host
    # file. Off: /tmp is in the initramfs's RAM-backed root.
    disk: bool = False


@register
class VMSetup(Setup):
    name = "vm"
    stack = "app → guest kernel → virtual devices (QEMU) → hypervisor (KVM or TCG) → host kernel"
    narration = ("the same app inside a virtual machine: it runs on a guest kernel of its own, and QEMU "
                 "emulates its network card. Without KVM, QEMU also translates every CPU instruction in "
                 "software (TCG): expect a large factor, and read it as emulation, not virtualization.")
    explanation = ("The app runs on its own guest kernel inside QEMU. Every packet crosses a virtual network "
                   "device that QEMU emulates (here user-mode networking with a forwarded port), and the guest "
                   "kernel, its page cache and the emulated devices all live in QEMU's memory on the host.")
    colour = "#D55E00"
    order = 20
    roles = (QEMU_PROCESS,)
    tools = (Tool("qemu", command=QEMU_VERSION),)
    Options = VMOptions
    runs_app_as = Layer.GUEST
    # TCG boots in ~4 s on an idle 2-core host; a loaded one can take several times that.
    # A QEMU that exits fails at once (the readiness loop polls the handle).
    ready_deadline_s = 60.0

    _plan = None  # a boot.BootPlan once prepared
    _accel: str | None = None
    _accel_reason: str = ""

    # ---- availability, housekeeping, declaration ---------------------------------------

    @classmethod
    def check(cls) -> str | None:
        from bench.images.initramfs import find_busybox
        from bench.images.kernel import kernel_status
        from bench.setups.vm.boot import QEMU

        if not shutil.which(QEMU):
            return f"{QEMU} is not installed (apt-get install qemu-system-x86, or run scripts/host-setup.sh)"
        if not find_busybox():
            return "busybox is not installed (apt-get install busybox-static, or run scripts/host-setup.sh)"
        status = kernel_status()
        return status if status.startswith("no guest kernel") and "will be fetched" not in status else None

    @classmethod
    def doctor_lines(cls) -> list[str]:
        from bench.images.kernel import kernel_status

        kvm = ("/dev/kvm present: probed with a bounded test boot on first use, TCG if the guest does not reach init"
               if os.path.exists("/dev/kvm") else "no /dev/kvm: the VM runs under TCG (software emulation)")
        return [kernel_status(), kvm]

    @classmethod
    def find_leftovers(cls) -> list[str]:
        from bench.setups.vm import leftovers

        return leftovers.find_leftovers()

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        from bench.setups.vm import leftovers

        return leftovers.clean_leftovers()  # QEMU's name carries the runner's pid, not the run id

    def variant(self) -> str:
        options: VMOptions = self.options  # type: ignore[assignment]
        name = self._accel or options.accel  # before prepare(): what was asked for
        if options.memory_mb != DEFAULT_MEMORY_MB:
            name += f",mem={options.memory_mb}"
        if options.vcpus != 1:
            name += f",vcpus={options.vcpus}"
        if not options.release_boot_files:
            name += ",keep-boot-files"
        if options.disk:
            name += ",disk"
        return name

    def explain(self) -> str:
        if self._accel == "tcg":
            return (self.explanation + " This VM ran under TCG: software emulation, where QEMU translates every "
                    "guest instruction into host instructions because hardware virtualization (KVM) was not usable. "
                    "Its figures show what emulation costs; they are NOT what the same VM would cost under KVM, "
                    "which runs guest code directly on the CPU and is far closer to bare.")
        if self._accel == "kvm":
            return (self.explanation + " It ran under KVM: guest code runs directly on the CPU, and the hypervisor "
                    "steps in only for privileged operations and device access.")
        return self.explanation

    def layer_stack(self) -> tuple[str, ...]:
        virtual = {"tcg": "emulator (QEMU TCG; every instruction translated)",
                   "kvm": "hypervisor (KVM + QEMU's devices)"}.get(self._accel or "", "hypervisor (QEMU)")
        return ("hardware", "host kernel", virtual, "guest kernel", "app")

    def caveats(self) -> list[str]:
        if self._accel == "tcg":
            return ["TCG: software emulation (no KVM): this layer's figures are far worse than a VM under KVM "
                    f"would give ({self._accel_reason}). Compare with care."]
        return []

    # ---- preparation -------------------------------------------------------------------

    def prepare(self) -> None:
        """Find/fetch the kernel, build the rootfs and initramfs, then decide the accel (may probe KVM)."""
        if self._plan is not None:
            return
        from bench.setups.vm.accel import decide_accel

        self._plan = self._boot_plan()
        self._accel, self._accel_reason = decide_accel(self.options.accel, self._plan,  # type: ignore[attr-defined]
                                                       self.pinning.app_cpus, self.progress)

    def _boot_plan(self):
        from bench.images import initramfs
        from bench.images.kernel import find_kernel
        from bench.images.pvh import pvh_vmlinux
        from bench.setups.vm.boot import BootPlan, host_tsc_khz
        from bench.setups.vm.disk import DISK_MB

        options: VMOptions = self.options  # type: ignore[assignment]
        try:
            kernel = find_kernel(options.kernel, progress=self.progress)
        except KernelError as error:
            raise SetupError(str(error)) from None
        vmlinux = pvh_vmlinux(kernel)
        machine = "microvm" if vmlinux else "q35"  # microvm's firmware-less boot wants the PVH ELF
        tree = self.app.tree(self.progress)
        start = self.app.start(Place(Layer.GUEST, "0.0.0.0", APP_PORT_IN_GUEST, files=tree))
        guest, extra_files = self._guest_boot(guest_start(start, tree))
        image = initramfs.build_initramfs(guest, kernel, progress=self.progress, extra_files=extra_files)
        if kernel.modules_dir is None or not image.modules:
            self.progress(f"warning: no virtio_net module found for kernel {kernel.version}; "
                          "the guest network works only if the driver is built in")
        if options.disk:
            _check_disk_support(kernel, image)
        return BootPlan(kernel, vmlinux or kernel.path, machine, image, options.memory_mb, options.vcpus,
                        host_tsc_khz(), DISK_MB if options.disk else 0, guest.port)

    # ---- lifecycle ---------------------------------------------------------------------

    def _launch(self) -> Instance:
        from bench.setups.vm.qemu import spawn

        self.prepare()
        plan, accel = self._plan, self._accel
        port = free_port(self.address)
        if port_in_use(port, self.address):
            raise SetupError(f"port {port} on {self.address} is taken; retry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / f"vm-{port}-serial.log"
        began = time.perf_counter()
        # hostfwd binds this one address (127.0.0.1, or a split run's): never every interface.
        qemu = spawn(plan, accel, port, self.pinning.app_cpus, log_path, address=self.address)
        launch_s = time.perf_counter() - began
        # No waiting here to see whether QEMU survives: the readiness loop notices an exit at
        # once (handle.poll), and _terminate turns it into a one-line error with QEMU's reason.
        return Instance(port=port, processes=_hypervisor_of(qemu), phases={"launch_s": launch_s},
                        facts=self._facts(qemu, port, log_path), handle=qemu, address=self.address,
                        network_path=_network_path())

    def _facts(self, qemu, port: int, log_path) -> dict:
        from bench.setups.vm.boot import TCG_TB_SIZE_MB

        plan, accel = self._plan, self._accel
        return {
            "accel": accel, "accel_reason": self._accel_reason, "kernel_version": plan.kernel.version,
            "kernel_source": plan.kernel.source, "boot_image": str(plan.boot_image), "machine": plan.machine,
            "initramfs_bytes": plan.initramfs.size_bytes, "initramfs_compression": plan.initramfs.compression,
            "guest_modules": list(plan.initramfs.modules), "memory_mb": plan.memory_mb, "vcpus": plan.vcpus,
            "tcg_tb_size_mb": TCG_TB_SIZE_MB if accel == "tcg" else None, "tsc_khz": plan.tsc_khz,
            "disk_mb": plan.disk_mb, "disk_cache": "writeback" if plan.disk_mb else None,
            "serial_log": str(log_path), "qemu_pid": qemu.popen.pid, "guest_port": plan.guest_port,
            "stats_url": f"http://{self.address}:{port}{self.app.stats_path}" if self.app.stats_path else None,
        }

    def _before_polling(self, instance: Instance, deadline_s: float) -> None:
        """Wait for the app's line on the serial console before /health is polled.

        Until the guest listens, a connection to QEMU's port forward is accepted on the host and
        then hangs until the poll's HTTP timeout, which would quantize the first 200.
        """
        from bench.setups.vm.serial import MARKER_APP

        qemu = instance.handle
        qemu.serial.wait_for(MARKER_APP, deadline_s, qemu.popen)

    def _after_ready(self, instance: Instance) -> None:
        """Split first_200_s with the console markers; optionally page out the boot images."""
        from bench.setups.vm.qemu import page_out_boot_files

        self._split_phases(instance)
        if self.options.release_boot_files:  # type: ignore[attr-defined]
            instance.facts["boot_files_paged_out_bytes"] = page_out_boot_files(
                instance.handle.popen.pid, [self._plan.boot_image, self._plan.initramfs.path])

    def _split_phases(self, instance: Instance) -> None:
        """Split first_200_s with the console markers: kernel_to_init_s (QEMU + guest kernel, up to
        /init), init_to_app_s (modules, network, interpreter, imports) and first_200_s (the rest)."""
        from bench.setups.vm.phases import split_phases

        split_phases(instance)

    def _guest_boot(self, guest) -> tuple[object, dict[str, bytes]]:
        """What the guest's init starts (the app's bench.apps.base.GuestStart) and the files the
        initramfs adds for it; a setup that boots this VM differently (a container inside) changes both."""
        return guest, {}

    def _terminate(self, instance: Instance) -> None:
        from bench.setups.vm.qemu import stop

        qemu = instance.handle
        if qemu is None or qemu.stopped:
            return
        stderr_tail = qemu.stderr_tail()  # read before stop() removes the temp dir
        died_early = stop(qemu)
        if died_early is not None:
            how = f"killed by signal {-died_early}" if died_early < 0 else f"exit status {died_early}"
            if "host forwarding" in stderr_tail:
                raise SetupError(f"QEMU could not forward {instance.address}:{instance.port} (port taken?): {stderr_tail}")
            words = stderr_tail or "guest console: " + (" | ".join(qemu.serial.tail(3)) or "(nothing printed)")
            raise SetupError(f"QEMU exited before it was stopped ({how}): {words}")

    def diagnose(self, instance: Instance) -> str:
        qemu = instance.handle
        if qemu is None:
            return ""
        words = []
        if qemu.popen.poll() is not None and qemu.stderr_tail():
            words.append(f"QEMU: {qemu.stderr_tail()}")
        tail = qemu.serial.tail()
        words.append("serial console: " + (" | ".join(tail) if tail else "(nothing printed)"))
        return "; ".join(words)


def _network_path():
    """What a request to the guest crosses: lo to QEMU's port forward, QEMU (its user-mode network
    ends the TCP connection and writes the guest's frames to the emulated NIC), the guest's eth0."""
    from bench.metrics.netpath import Forwarder, Inside, Interface, NetworkPath

    return NetworkPath(steps=(Interface("lo", "loopback"), Forwarder(HYPERVISOR.key),
                              Inside("eth0", "the guest's virtio NIC as the guest kernel counts it: QEMU's user-mode "
                                     "network makes these frames, no host interface carries them")))


def _hypervisor_of(qemu):
    import psutil

    try:
        hypervisor = psutil.Process(qemu.popen.pid)
    except psutil.Error:
        hypervisor = None

    def processes() -> list[RoleProcess]:
        # poll() reaps an exited QEMU; psutil would call its zombie "running" and the readiness
        # loop would wait out its whole deadline instead of failing at once.
        if hypervisor is None or qemu.popen.poll() is not None:
            return []
        return [RoleProcess(HYPERVISOR.key, hypervisor)]
    return processes


def _check_disk_support(kernel, image) -> None:
    from bench.setups.vm.disk import find_mkfs_ext4

    if find_mkfs_ext4() is None:
        raise SetupError("mkfs.ext4 is not installed (apt-get install e2fsprogs); the VM's disk needs it")
    config = kernel.path.parent / "config"
    built_in = config.is_file() and "CONFIG_VIRTIO_BLK=y" in config.read_text().split()
    if "virtio_blk" not in image.modules and not built_in:
        raise SetupError(f"no virtio_blk module for guest kernel {kernel.version}; the VM's disk needs it "
                         f"(remove {kernel.path.parent} so layerbench fetches the kernel again)")
