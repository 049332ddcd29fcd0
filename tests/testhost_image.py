"""The test-host image: a Debian userland from `debootstrap --variant=minbase`, imported into Docker.

No registry is reachable, so the image is built from the apt mirror this machine is configured
with and `docker import`ed. It is cached under a tag derived from the package list, the suite,
the mirror and the entry-point script: a second build with the same inputs is a no-op. The
downloaded .debs are kept in ~/.cache/layerbench/testhost-debs, so changing the list re-downloads
only what is new.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LABEL = "layerbench-testhost"  # not "layerbench": other tests' leftover checks must ignore test hosts
IMAGE_REPO = "layerbench-testhost"
SUITE = "bookworm"
USER = "lab"
PACKAGES = ("openssh-server", "python3", "python3-venv", "iproute2", "procps", "docker.io", "wrk", "sudo")
WITH_QEMU = ("qemu-system-x86", "busybox-static", "lz4")  # optional: the vm setup inside a test host (TCG)
INIT_SCRIPT = Path(__file__).with_name("testhost_init.sh")
DEB_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "layerbench" / "testhost-debs"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# sshd_config.d is read before the main file's own lines, and for sshd the first value wins.
SSHD_CONFIG = """\
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
# pam_loginuid needs CAP_AUDIT_CONTROL, which a container lacks; keys are all we use.
UsePAM no
UseDNS no
PrintMotd no
"""
# The login user may become root without a password (Ansible's become, and a split run's sudo -n).
SUDOERS = f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
# What a container never needs and that takes room: downloaded .debs, package lists, docs.
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info")


class LabError(RuntimeError):
    """Something a test host needs is missing or failed; the message is one line with the fix."""


@dataclass(frozen=True)
class Image:
    tag: str
    built: bool  # False: found in Docker's image cache
    build_s: float
    size_bytes: int


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org."""
    files = sorted((sources_dir / "sources.list.d").glob("*.sources")) + [sources_dir / "sources.list"]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE) + \
                re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def image_tag(packages: tuple[str, ...] = PACKAGES, mirror: str | None = None) -> str:
    """layerbench-testhost:<12 hex>, a hash of everything that goes into the image."""
    recipe = "\n".join([SUITE, mirror or apt_mirror(), *sorted(packages), SSHD_CONFIG, SUDOERS,
                        INIT_SCRIPT.read_text()])
    return f"{IMAGE_REPO}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def image_size_bytes(tag: str) -> int | None:
    """The image's size in Docker, or None when Docker has no such image."""
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag],
                            capture_output=True, text=True)
    return int(result.stdout.strip()) if result.returncode == 0 else None


def build_image(packages: tuple[str, ...] = PACKAGES, progress=lambda message: None) -> Image:
    """Find or build the test-host image; debootstrap + docker import, about a minute when cold."""
    mirror = apt_mirror()
    tag = image_tag(packages, mirror)
    size = image_size_bytes(tag)
    if size is not None:
        return Image(tag, built=False, build_s=0.0, size_bytes=size)
    _check_can_build()
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="layerbench-testhost-", dir="/var/tmp"))
    try:
        rootfs = workdir / "rootfs"
        progress(f"debootstrap {SUITE} from {mirror} with {len(packages)} packages (about a minute when cold)")
        _debootstrap(rootfs, packages, mirror)
        _configure(rootfs)
        progress(f"docker import as {tag}")
        _import(rootfs, tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Image(tag, built=True, build_s=time.perf_counter() - began, size_bytes=image_size_bytes(tag) or 0)


def remove_images() -> list[str]:
    """Remove every cached test-host image (forces a cold build next time); the tags removed."""
    listed = subprocess.run(["docker", "images", "--filter", f"reference={IMAGE_REPO}", "--format",
                             "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True)
    tags = listed.stdout.split()
    if tags:
        subprocess.run(["docker", "rmi", *tags], capture_output=True, check=True)
    return tags


def _check_can_build() -> None:
    if os.geteuid() != 0:
        raise LabError("building the test-host image needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing (run: apt-get install debootstrap)")


def _debootstrap(rootfs: Path, packages: tuple[str, ...], mirror: str) -> None:
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
               f"--cache-dir={DEB_CACHE}", SUITE, str(rootfs), mirror]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise LabError(f"debootstrap failed: {' | '.join(tail)}")


def _configure(rootfs: Path) -> None:
    """The login user, sshd's settings and the entry point; then drop what no host needs."""
    subprocess.run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash",
                    "--groups", "docker", USER], check=True, capture_output=True)
    # useradd leaves the password "!" (locked), and without PAM sshd refuses a locked account even
    # for key logins; "*" means "no password" without locking.
    subprocess.run(["chroot", str(rootfs), "usermod", "--password", "*", USER], check=True, capture_output=True)
    (rootfs / "etc/ssh/sshd_config.d/testhost.conf").write_text(SSHD_CONFIG)
    if (rootfs / "etc/sudoers.d").is_dir():
        (rootfs / "etc/sudoers.d/testhost").write_text(SUDOERS)
        (rootfs / "etc/sudoers.d/testhost").chmod(0o440)
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    init = rootfs / "usr/local/sbin/testhost-init"
    shutil.copyfile(INIT_SCRIPT, init)
    init.chmod(0o755)
    for relative in TRIM:
        shutil.rmtree(rootfs / relative, ignore_errors=True)
        (rootfs / relative).mkdir(parents=True, exist_ok=True)


def _import(rootfs: Path, tag: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    result = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}.image=1",
                             "--change", 'ENTRYPOINT ["/usr/local/sbin/testhost-init"]', "-", tag],
                            stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    tar.wait()
    if result.returncode != 0 or tar.returncode != 0:
        raise LabError(f"docker import failed: {result.stderr.strip() or 'tar exited ' + str(tar.returncode)}")


PROBE = "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.libc_ver()[1], platform.machine())"


def build_ready_image(base: Image, progress=lambda message: None) -> Image:
    """The test-host image with layerbench's dependencies already in the venvs of `lab` and root,
    where a fleet run installs them (bench/fleet/playbooks/fleet.yml), so that a run installs only
    layerbench's own wheel. Tagged with the base image and the wheelhouse (a hash of the
    dependencies and the hosts' Python): made once, found in Docker's cache afterwards."""
    from bench.fleet.wheel import requirements
    from bench.fleet.wheelhouse import Interpreter, wheelhouse_for

    probed = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python3", base.tag, "-c", PROBE],
                            capture_output=True, text=True)
    if probed.returncode != 0:
        raise LabError(f"cannot probe the test-host image's Python: {probed.stderr.strip()[-200:]}")
    wheelhouse = wheelhouse_for(requirements(), Interpreter(*probed.stdout.split()))
    python = probed.stdout.split()[0]
    tag = f"{base.tag}-deps-{wheelhouse.name}"
    size = image_size_bytes(tag)
    if size is not None:
        return Image(tag, built=False, build_s=0.0, size_bytes=size)
    progress(f"installing layerbench's dependencies into the test-host image as {tag}")
    began = time.perf_counter()
    pip = next(wheelhouse.glob("pip-*.whl")).name
    install = (f"set -e; base=$HOME/.cache/layerbench/fleet; mkdir -p $base/wheels; "
               f"cp /tmp/wheelhouse/*.whl $base/wheels/; python3 -m venv --without-pip $base/venv-{python}; "
               f"$base/venv-{python}/bin/python $base/wheels/{pip}/pip "
               f"install --quiet --disable-pip-version-check --no-index --find-links $base/wheels "
               f"{' '.join(repr(requirement) for requirement in requirements())}; "
               f"touch $base/wheels/.wheelhouse-{wheelhouse.name}")
    container = f"layerbench-testhost-ready-{os.getpid()}"
    try:
        run = subprocess.run(["docker", "run", "--name", container, "--volume", f"{wheelhouse}:/wheelhouse:ro",
                              "--entrypoint", "sh", base.tag, "-c",
                              f"cp -r /wheelhouse /tmp/wheelhouse && chmod -R a+rX /tmp/wheelhouse && {install} && "
                              f"runuser -u {USER} -- sh -c {_quote(install)} && rm -rf /tmp/wheelhouse"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise LabError(f"installing the dependencies into the test-host image failed: {run.stderr.strip()[-300:]}")
        committed = subprocess.run(["docker", "commit", "--change", 'ENTRYPOINT ["/usr/local/sbin/testhost-init"]',
                                    "--change", "CMD []", container, tag], capture_output=True, text=True)
        if committed.returncode != 0:
            raise LabError(f"docker commit failed: {committed.stderr.strip()}")
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True)
    return Image(tag, built=True, build_s=time.perf_counter() - began, size_bytes=image_size_bytes(tag) or 0)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
