"""The VM's /init: a busybox sh script run as PID 1 that brings the guest up and starts the app.

It mounts proc/sys/devtmpfs, loads the modules, configures eth0 as QEMU's user-mode network
expects (10.0.2.15/24 via 10.0.2.2), optionally mounts a disk at /tmp, and starts the app with
its own environment, working directory and user. Everything layerbench adds to the guest lives
under /.layerbench, so an image's own /bin, /lib and /usr stay exactly as the image has them.

It prints timestamped markers on the serial console so the host can split start-up:
"layerbench: init started", "layerbench: app listening" (the app's own line, or init seeing its
port listen in /proc/net/tcp for an app that prints none).
"""

from __future__ import annotations

import shlex
from typing import Iterable

INIT_VERSION = "4"  # bump when the script changes: a new initramfs builds

MARKER_INIT = "layerbench: init started"
MARKER_NETWORK = "layerbench: network up"
MARKER_APP = "layerbench: app listening"
MARKER_APP_EXITED = "layerbench: app exited"
MARKER_DISK = "layerbench: disk mounted"
MARKER_DISK_FAILED = "layerbench: disk failed"
# On the kernel command line when the VM has a disk (/dev/vda, ext4 made on the host): init then
# loads DISK_MODULES and mounts it at /tmp before the app starts. Without it nothing changes.
DISK_CMDLINE = "layerbench.disk=vda"

GUEST_DIR = "/.layerbench"  # layerbench's own files in the guest, apart from the app's
GUEST_BUSYBOX = f"{GUEST_DIR}/busybox"
GUEST_MODULES_DIR = f"{GUEST_DIR}/modules"  # the .ko files, already ordered
GUEST_LIB_DIR = f"{GUEST_DIR}/lib"  # the user switcher's shared libraries and loader
GUEST_SETPRIV = f"{GUEST_DIR}/setpriv"  # util-linux's setpriv: switches to the app's user, then execs it
GUEST_LOADER = f"{GUEST_LIB_DIR}/ld-linux.so"

GUEST_IP = "10.0.2.15/24"  # QEMU user-mode networking's fixed plan
GUEST_GATEWAY = "10.0.2.2"


def run_as(app_argv: list[str], uid: int) -> list[str]:
    """app_argv changed to drop root for uid/gid before the app runs, when it is `python ... -c CODE`.

    The interpreter can drop privileges itself at no extra start-up cost (no helper process). Any
    other argv is returned unchanged.
    """
    if "-c" not in app_argv[:-1]:
        return app_argv
    index = app_argv.index("-c") + 1
    drop = f"import os; os.setgroups([]); os.setgid({uid}); os.setuid({uid}); "
    return app_argv[:index] + [drop + app_argv[index]] + app_argv[index + 1:]


def switch_user_argv(uid: int, gid: int) -> list[str]:
    """The prefix that runs a command as uid:gid with no supplementary groups: setpriv, through its
    own loader and libraries under /.layerbench (the image's own libraries are never touched)."""
    return [GUEST_LOADER, "--library-path", GUEST_LIB_DIR, GUEST_SETPRIV, f"--reuid={uid}", f"--regid={gid}",
            "--clear-groups"]


def _disk_block(disk_modules: Iterable[str]) -> str:
    disk_insmods = "".join(f'\n    $BB insmod {GUEST_MODULES_DIR}/{name} || echo "layerbench: insmod {name} failed"'
                           for name in disk_modules)
    # With a disk, the app's temp files must really land on it: a disk that does not mount
    # powers the guest off (the host then reports the console) rather than measuring RAM.
    return f"""if $BB grep -qF {DISK_CMDLINE} /proc/cmdline; then{disk_insmods}
    n=0
    while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do $BB usleep 20000; n=$((n + 1)); done
    if $BB mkdir -p /tmp && $BB mount -t ext4 /dev/vda /tmp && $BB chmod 1777 /tmp; then
        read -r uptime_s _ < /proc/uptime
        echo "{MARKER_DISK} uptime_s=$uptime_s $($BB grep ' /tmp ' /proc/mounts)"
    else
        echo "{MARKER_DISK_FAILED}: cannot mount /dev/vda on /tmp"
        $BB poweroff -f
    fi
fi"""


def _start_block(command: str, port: int, ready_line: str | None) -> str:
    if ready_line is not None:
        # The app's output comes back through a fifo so this shell can stamp the moment it says it listens.
        return f"""$BB mkfifo /tmp/app.out
$BB env -i {command} >/tmp/app.out 2>&1 &
while IFS= read -r line; do
    echo "$line"
    case "$line" in
        *{shlex.quote(ready_line)}*) stamp "{MARKER_APP}" ;;
    esac
done </tmp/app.out
wait"""
    # An app that says nothing: watch the kernel's socket table for its port in LISTEN (state 0A),
    # with shell builtins only (under TCG every fork costs milliseconds).
    return f"""$BB env -i {command} &
app=$!
listening() {{
    for table in /proc/net/tcp /proc/net/tcp6; do
        [ -r $table ] || continue
        while read -r _ local _ state _; do
            case "$local $state" in *:{port:04X}" 0A") return 0 ;; esac
        done < $table
    done
    return 1
}}
until listening; do
    kill -0 $app 2>/dev/null || break
    $BB usleep 5000
done
kill -0 $app 2>/dev/null && stamp "{MARKER_APP}"
wait $app"""


def init_script(modules: list[str], guest, disk_modules: Iterable[str] = ()) -> str:
    """The busybox sh script run as /init (PID 1); `modules` are .ko names in load order; `guest`
    is a bench.apps.base.GuestStart. `disk_modules` load only when the kernel command line holds
    DISK_CMDLINE."""
    argv = list(guest.argv)
    if not guest.drops_own_privileges and (guest.uid, guest.gid) != (0, 0):
        argv = switch_user_argv(guest.uid, guest.gid) + argv
    env = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(guest.env.items()))
    command = " ".join([env, *(shlex.quote(arg) for arg in argv)]).strip()
    insmods = "\n".join(f'$BB insmod {GUEST_MODULES_DIR}/{name} || echo "layerbench: insmod {name} failed"'
                        for name in modules)
    return f"""#!{GUEST_BUSYBOX} sh
# layerbench init {INIT_VERSION}: PID 1 of the VM. Markers carry the guest's uptime in seconds.
BB={GUEST_BUSYBOX}
# A marker reads the uptime with shell builtins: under TCG a subshell and an exec of busybox cost
# tens of ms each.
stamp() {{ read -r uptime_s _ < /proc/uptime; echo "$1 uptime_s=$uptime_s"; }}
$BB mount -t proc proc /proc
stamp "{MARKER_INIT}"
$BB mount -t sysfs sysfs /sys
$BB mount -t devtmpfs devtmpfs /dev
{insmods}
$BB ip link set lo up
$BB ip link set eth0 up
$BB ip addr add {GUEST_IP} dev eth0
$BB ip route add default via {GUEST_GATEWAY}
stamp "{MARKER_NETWORK}"
{_disk_block(disk_modules)}
cd {shlex.quote(guest.workdir or "/")}
# The app is a direct child of this shell (its ppid is 1), with only its own environment.
{_start_block(command, guest.port, guest.ready_line)}
stamp "{MARKER_APP_EXITED} status=$?"
# PID 1 must not exit (kernel panic); power off so QEMU exits and the host sees it at once.
$BB poweroff -f
"""
