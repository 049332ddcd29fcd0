"""The OCI runtime a container runs on: runc (Docker's default), crun, or gVisor's runsc.

What Docker has registered (`docker info`'s runtimes: path and arguments, so gVisor's platform and
network mode are read, not assumed), whether the runtime can start a container here (a tiny probe
container with the app's own flags: the engine's own words when it cannot, and the fix), and the
words that explain each runtime in the report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.errors import SetupError

DEFAULT_RUNTIME = "runc"
RUNTIMES = ("runc", "crun", "runsc")
HOST_SETUP = "sudo scripts/host-setup.sh"
PROBE_SETTLE_S = 0.3  # after start: a runtime that fails does so by then (or start itself fails)

# The engine's words -> how to fix it (first match wins).
_FIXES = (
    ("cgroups in hybrid mode", "crun needs a host whose cgroups are v2 only (boot with "
                               "systemd.unified_cgroup_hierarchy=1); it does run inside the VM (setup container-in-vm "
                               "with runtime: crun)"),
    ("network enabled in root network namespace", "register runsc with --network=host, as " + HOST_SETUP + " does"),
    ("unknown or invalid runtime", "install and register it with dockerd: " + HOST_SETUP),
)
_GENERIC_FIX = f"{HOST_SETUP} installs runsc and crun and registers them with dockerd"


@dataclass(frozen=True)
class RuntimeInfo:
    """One runtime as dockerd has it registered."""

    name: str
    path: str
    args: tuple[str, ...]
    release: str  # the runtime's own version line (runsc: its Debian package when known)

    def _flag(self, flag: str) -> str | None:
        return next((arg.split("=", 1)[1] for arg in self.args if arg.startswith(f"--{flag}=")), None)

    @property
    def gvisor(self) -> bool:
        return self.name == "runsc" or Path(self.path).name == "runsc"

    @property
    def platform(self) -> str | None:
        """gVisor's platform (systrap, ptrace, kvm): how the sentry catches the app's system calls."""
        return (self._flag("platform") or "default") if self.gvisor else None

    @property
    def network(self) -> str | None:
        """gVisor's network mode: "host" (the host kernel's stack) or "sandbox" (its own netstack)."""
        return (self._flag("network") or "sandbox") if self.gvisor else None

    def variant_part(self) -> str:
        """The runtime's piece of a container variant: "" for runc, "crun", "runsc-systrap"."""
        if self.name == DEFAULT_RUNTIME:
            return ""
        if self.gvisor:
            part = f"{self.name}-{self.platform}"
            return part if self.network == "host" else f"{part},netstack"
        return self.name

    def facts(self) -> dict:
        return {"runtime": self.name, "runtime_path": self.path, "runtime_args": list(self.args),
                "runtime_release": self.release, "gvisor_platform": self.platform, "gvisor_network": self.network}


def registered(client) -> dict[str, dict]:
    """{name: {"path", "runtimeArgs"}} of every runtime dockerd has registered."""
    try:
        return dict(client.info().get("Runtimes") or {})
    except Exception as error:
        raise SetupError(f"Docker daemon stopped answering: {error}") from None


def runtime_info(client, name: str) -> RuntimeInfo:
    """The registered runtime `name`; SetupError saying how to register it otherwise."""
    runtimes = registered(client)
    if name not in runtimes:
        known = ", ".join(sorted(runtimes)) or "none"
        raise SetupError(f"Docker has no runtime {name!r} registered (it has: {known}); install and register it: "
                         f"{HOST_SETUP}")
    entry = runtimes[name] or {}
    path = str(entry.get("path") or name)
    return RuntimeInfo(name, path, tuple(str(arg) for arg in entry.get("runtimeArgs") or ()), release_of(path))


def release_of(path: str) -> str:
    """The runtime's version: the package name host-setup wrote next to it, else its --version line."""
    binary = shutil.which(path) or path
    package = Path(binary).with_name(Path(binary).name + ".package")
    if package.is_file():
        return package.read_text().strip()
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def fix_for(message: str) -> str:
    """How to fix a runtime failure, from the engine's words."""
    return next((fix for words, fix in _FIXES if words in message), _GENERIC_FIX)


def cannot_run(name: str, message: str) -> str:
    """The one-line reason a runtime cannot run here: the engine's words, then the fix."""
    message = re.sub(r"\s+", " ", message).strip()
    return f"the {name} runtime cannot start a container here: {message}; fix: {fix_for(message)}"


def probe(client, run_kwargs: dict) -> str | None:
    """Create and start a throwaway container with the app's own flags and command: None when the
    runtime started it (and it had not failed a moment later), else the engine's message. Always
    removed, with any shim a failed start left behind (gVisor leaves one: bench.setups.container.shims)."""
    from bench.setups.container import engine, shims

    docker = engine.docker_sdk()
    kwargs = {key: value for key, value in run_kwargs.items() if key != "ports"}  # no port needed to run
    kwargs.update(name=kwargs["name"] + "-probe")
    container = None
    try:
        container = client.containers.create(**kwargs)
        container.start()
        time.sleep(PROBE_SETTLE_S)
        container.reload()
        state = container.attrs.get("State", {})
        if state.get("Status") == "exited" and int(state.get("ExitCode", 0)) != 0:
            logs = container.logs(tail=3).decode(errors="replace").strip()
            return f"the probe container exited {state.get('ExitCode')}: {logs or 'no output'}"
        return None
    except docker.errors.APIError as error:
        return engine.explain(error)
    except Exception as error:  # a timeout or the daemon going away
        return f"{type(error).__name__}: {engine.explain(error)}"
    finally:
        container_id = container.id if container is not None else None
        engine.remove_by_name(client, kwargs["name"])
        if container_id:
            shims.remove_shims_of(container_id)


def doctor_lines(client) -> list[str]:
    """`bench doctor`: each registered runtime as dockerd has it, and whether it starts a container here
    (probed with the newest layerbench image, when there is one: doctor builds nothing)."""
    from bench.images.docker_image import REPOSITORY
    from bench.setups.container import engine

    images = client.images.list(name=REPOSITORY)
    lines = []
    for name in sorted(registered(client)):
        info = runtime_info(client, name)
        words = " ".join(part for part in (f"runtime {name}: {info.path}", *info.args, f"({info.release})") if part)
        if name == DEFAULT_RUNTIME or name not in RUNTIMES:
            lines.append(words)
            continue
        if not images:
            lines.append(words + "; not probed (no layerbench image yet: `bench run` builds it)")
            continue
        image = max(images, key=lambda found: found.attrs.get("Created", ""))
        # The image's own command (the app on its port inside the container's network), locked down.
        kwargs = {"image": image.id, "name": f"layerbench-doctor-{os.getpid()}-{name}", "detach": True,
                  "user": "65534:65534", "read_only": True, "tmpfs": {"/tmp": "size=64m"}, "cap_drop": ["ALL"],
                  "security_opt": ["no-new-privileges"], "runtime": name, "labels": {engine.LABEL: "1"}}
        failure = probe(client, kwargs)
        lines.append(words + ("; starts a container here" if failure is None else "; " + cannot_run(name, failure)))
    return lines


def explain(info: RuntimeInfo) -> str:
    """What this runtime adds to the container's explanation (runc: nothing)."""
    if info.gvisor:
        return gvisor_explanation(info)
    if info.name == DEFAULT_RUNTIME:
        return ""
    return (f" It runs on {info.name} ({info.release}) instead of runc: an OCI runtime in C rather than Go that "
            f"sets up the same namespaces and cgroups, so a request, which never meets the runtime, should cost "
            f"the same. It differs in how fast it creates the container (start-up) and in the runtime's own "
            f"memory, which is gone once the container runs; the containerd shim stays.")


_PLATFORMS = {
    "systrap": "each system call traps (seccomp SIGSYS) in the stub process where the app's code runs and is "
               "handed to the sentry through shared memory",
    "ptrace": "the sentry traces the stub processes where the app's code runs and stops them at each system call "
              "(the slowest platform)",
    "kvm": "the sentry runs the app in a virtual machine of its own (KVM) and catches each system call as a VM exit",
}


def gvisor_explanation(info: RuntimeInfo) -> str:
    platform = _PLATFORMS.get(info.platform or "", f"the {info.platform} platform catches each system call")
    network = ("With --network=host, gVisor passes socket calls on to the host kernel's network stack instead of "
               "running its own (netstack)." if info.network == "host" else
               "Sockets are served by gVisor's own network stack (netstack) inside the sandbox.")
    return (f"The app runs in a gVisor sandbox ({info.release}, platform {info.platform}): it never talks to "
            f"the host kernel. Every system call it makes is intercepted by the sentry, a kernel written in Go that "
            f"runs as an ordinary process in user space, and served there; the sentry then makes fewer, filtered calls "
            f"of its own to the host. Here {platform}. A second process, the gofer, serves its file access. "
            f"{network} That interception is the cost: a tiny request is mostly system calls (read, write, poll), "
            f"each crossing into the sentry and back. CPU work in the app's own code runs natively between its "
            f"calls, so it pays less in proportion, though not nothing: the sentry also maps the memory the app "
            f"touches. The sentry and the gofer are one more kernel's worth of memory per sandbox.")


def caveats(info: RuntimeInfo) -> list[str]:
    if not info.gvisor:
        return []
    found = ["Under gVisor the app's own view (/stats: its CPU time, RSS and kernel release) is gVisor's "
             "accounting, not the host's: compare the host's figures, which count the sentry, the gofer and the "
             "stubs."]
    if info.network == "host":
        found.insert(0, "gVisor ran with --network=host: sockets went to the host kernel's network stack, not to "
                        "gVisor's own netstack (its default, which cannot start on this host); a sandbox with "
                        "netstack would pay more per packet.")
    return found
