#!/usr/bin/env bash
# Product set-up, run by `make demo`, `make host` and `make test` (or by hand, as root): prepare a
# fresh Debian/Ubuntu machine for layerbench, the system packages the setups need and a running
# Docker daemon. Idempotent; safe to run on every `make demo` / `make test`.
# Without root it installs nothing and says what is missing: the setups then skip with a reason.
set -euo pipefail

log() { echo "host-setup: $*" >&2; }

need_packages=()
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_packages+=(python3-venv)
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_packages+=(qemu-system-x86)
command -v wrk >/dev/null 2>&1 || need_packages+=(wrk)
[ -x /usr/sbin/nginx ] || need_packages+=(nginx)  # the second reference app (app: nginx)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need_packages+=(busybox-static)
command -v zstd >/dev/null 2>&1 || need_packages+=(zstd)  # unpacks the guest kernel for a direct boot
command -v lz4 >/dev/null 2>&1 || need_packages+=(lz4)    # compresses the VM's initramfs
[ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || need_packages+=(e2fsprogs)  # the VM's io disk
command -v crun >/dev/null 2>&1 || need_packages+=(crun)  # the container's lighter OCI runtime variant
# Podman, rootful and rootless (container: {engine: podman}): Debian 12's 4.3 with netavark for
# rootful networking, slirp4netns and uidmap (newuidmap) for rootless, catatonit for its pause process.
command -v podman >/dev/null 2>&1 || need_packages+=(podman netavark)
command -v slirp4netns >/dev/null 2>&1 || need_packages+=(slirp4netns)
command -v newuidmap >/dev/null 2>&1 || need_packages+=(uidmap)
command -v catatonit >/dev/null 2>&1 || need_packages+=(catatonit)
command -v ssh >/dev/null 2>&1 || need_packages+=(openssh-client)  # fleet and split runs (bench run --hosts)
# `make test` also wants Chromium, to screenshot the HTML report, and debootstrap, to build the
# image of the test hosts that fleet and split runs are tested against (LAYERBENCH_TEST_TOOLS=1).
if [ "${LAYERBENCH_TEST_TOOLS:-0}" = 1 ]; then
    command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
    command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_packages+=(debootstrap)
    command -v bpftrace >/dev/null 2>&1 || need_packages+=(bpftrace)  # bench run --trace-hops, cross-checked in tests
fi

if [ "${#need_packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "not root: cannot install ${need_packages[*]} (run: sudo apt-get install ${need_packages[*]})"
    else
        log "installing ${need_packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
        # The package starts a system nginx on port 80; layerbench runs its own from a generated
        # config, so the service it just installed is stopped and kept from starting at boot.
        if printf '%s\n' "${need_packages[@]}" | grep -qx nginx; then
            if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                systemctl disable --now nginx >/dev/null 2>&1 || true
            else
                invoke-rc.d nginx stop >/dev/null 2>&1 || true
                update-rc.d nginx disable >/dev/null 2>&1 || true
            fi
        fi
    fi
fi

# bench run --trace-hops (tested with `make test`) attaches bpftrace to the kernel's net tracepoints,
# which it finds in tracefs; some machines boot without it mounted.
if [ "${LAYERBENCH_TEST_TOOLS:-0}" = 1 ] && [ "$(id -u)" -eq 0 ] && [ ! -d /sys/kernel/tracing/events ] \
        && [ ! -d /sys/kernel/debug/tracing/events ]; then
    if mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then log "mounted tracefs at /sys/kernel/tracing"
    else log "cannot mount tracefs: bench run --trace-hops will say so"; fi
fi

# The VM setup fetches Debian's cloud kernel with `apt-get download`, which needs package lists.
if [ "$(id -u)" -eq 0 ] && command -v apt-cache >/dev/null 2>&1 \
        && ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    log "refreshing apt package lists (the VM's guest kernel is fetched from them)"
    apt-get update -qq || log "apt-get update failed; the VM setup may be skipped"
fi

# Start dockerd when no daemon answers, then wait for its socket.
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null 2>&1; then
        log "starting dockerd (log: /var/log/layerbench-dockerd.log)"
        # Its own session: the daemon outlives the shell, make or CI step that started it (a
        # process-group kill at the end of a job took it down with the job). The log is appended to.
        setsid nohup dockerd >>/var/log/layerbench-dockerd.log 2>&1 </dev/null &
        for _ in $(seq 1 60); do
            docker info >/dev/null 2>&1 && break
            sleep 0.5
        done
        docker info >/dev/null 2>&1 && log "dockerd is up" || log "dockerd did not answer within 30 s; see /var/log/layerbench-dockerd.log"
    else
        log "no Docker daemon answers and this user cannot start one (run: sudo dockerd &)"
    fi
fi

# ---- OCI runtimes for the container variants: gVisor's runsc and crun --------------------
# Debian 13's runsc (release 20240729, one static binary, systrap platform) runs on this kind of
# host and is faster than Debian 12's (20221219, ptrace): fetch it from the trixie suite of the
# machine's own Debian mirror with `apt-get download`, through a throwaway sources list and
# lists folder, so the system's apt never sees trixie. Debian 12's package is the fallback.
RUNSC_DIR=/usr/local/lib/layerbench
RUNSC_TRIXIE="$RUNSC_DIR/runsc"

debian_mirror() {
    # The archive the machine installs from (one-line .list or deb822 .sources), not the security one.
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    local uri
    uri=$(cat "${files[@]}" 2>/dev/null | grep -v '^[[:space:]]*#' \
          | grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | grep -v security | head -n 1 | tr -d '[:space:]' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

fetch_runsc_trixie() {
    # apt-get download runsc from trixie into a temp dir (always removed); install it at $RUNSC_TRIXIE.
    local scratch status=0
    scratch=$(mktemp -d /tmp/layerbench-runsc.XXXXXX) || return 1
    fetch_runsc_into "$scratch" || status=$?
    rm -rf "$scratch"
    return "$status"
}

fetch_runsc_into() {
    local scratch=$1 mirror apt_opts
    mirror=$(debian_mirror)
    mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/deb"
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$mirror" \
        /usr/share/keyrings/debian-archive-keyring.gpg >"$scratch/trixie.sources"
    id _apt >/dev/null 2>&1 && chown _apt "$scratch/deb"  # apt's download sandbox user writes there
    apt_opts=(-q -o Dir::Etc::SourceList="$scratch/trixie.sources" -o Dir::Etc::SourceParts=/nonexistent
              -o Dir::State::Lists="$scratch/lists" -o Dir::Cache="$scratch/cache"
              -o Acquire::Languages=none -o APT::Architectures=amd64)
    apt-get "${apt_opts[@]}" update >"$scratch/apt.log" 2>&1 \
        && (cd "$scratch/deb" && apt-get "${apt_opts[@]}" download runsc >>"$scratch/apt.log" 2>&1) \
        && dpkg-deb -x "$scratch"/deb/runsc_*.deb "$scratch/x" \
        && "$scratch/x/usr/bin/runsc" --version >/dev/null 2>&1 \
        || { log "could not fetch runsc from trixie at $mirror: $(grep -E '^(E|W):' "$scratch/apt.log" | tail -n 1)"; return 1; }
    mkdir -p "$RUNSC_DIR"
    install -m 0755 "$scratch/x/usr/bin/runsc" "$RUNSC_TRIXIE.new" && mv -f "$RUNSC_TRIXIE.new" "$RUNSC_TRIXIE"
    basename "$scratch"/deb/runsc_*.deb .deb >"$RUNSC_DIR/runsc.package"  # which release, for the facts
    log "installed $("$RUNSC_TRIXIE" --version | head -n 1) at $RUNSC_TRIXIE (from trixie)"
}

# Prints the runtimes JSON for register_runtimes.py: each runtime whose binary is here.
runtimes_json() {
    local runsc_path="" runsc_platform=""
    if [ -x "$RUNSC_TRIXIE" ]; then
        runsc_path=$RUNSC_TRIXIE; runsc_platform=systrap
    elif command -v runsc >/dev/null 2>&1; then
        runsc_path=$(command -v runsc); runsc_platform=ptrace  # Debian 12's release has no systrap
    fi
    RUNSC_PATH=$runsc_path RUNSC_PLATFORM=$runsc_platform CRUN_PATH=$(command -v crun || true) python3 -c '
import json, os
runtimes = {}
if os.environ["RUNSC_PATH"]:
    # Docker sandbox networking fails here ("cannot run with network enabled in root network
    # namespace"): gVisor uses the host network stack, with docker run --network host.
    runtimes["runsc"] = {"path": os.environ["RUNSC_PATH"],
                         "runtimeArgs": ["--platform=" + os.environ["RUNSC_PLATFORM"], "--network=host"]}
if os.environ["CRUN_PATH"]:
    runtimes["crun"] = {"path": os.environ["CRUN_PATH"]}
print(json.dumps(runtimes))'
}

docker_lists_runtimes() {
    local listed
    listed=$(docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null) || return 1
    for name in "$@"; do
        case " $listed " in *" $name "*) ;; *) return 1 ;; esac
    done
}

setup_runtimes() {
    if [ "$(id -u)" -ne 0 ]; then
        [ -x "$RUNSC_TRIXIE" ] || command -v runsc >/dev/null 2>&1 \
            || log "not root: gVisor's runsc is not installed (run: sudo scripts/host-setup.sh)"
        if docker info >/dev/null 2>&1 && ! docker_lists_runtimes runsc crun; then
            log "not root: Docker does not list the runsc and crun runtimes (run: sudo scripts/host-setup.sh)"
        fi
        return 0
    fi
    if ! { [ -x "$RUNSC_TRIXIE" ] && "$RUNSC_TRIXIE" --version >/dev/null 2>&1; }; then
        fetch_runsc_trixie || {
            log "falling back to Debian 12's runsc (release 20221219, ptrace platform)"
            command -v runsc >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends runsc >/dev/null || log "apt-get install runsc failed"
        }
    fi
    command -v dockerd >/dev/null 2>&1 || return 0
    local wanted names result pid
    wanted=$(runtimes_json)
    names=$(python3 -c 'import json, sys; print(" ".join(json.loads(sys.argv[1])))' "$wanted")
    [ -n "$names" ] || { log "neither runsc nor crun is installed: no runtime to register"; return 0; }
    if ! result=$(python3 "$(dirname "$0")/register_runtimes.py" /etc/docker/daemon.json "$wanted" 2>&1); then
        log "runtimes not registered: $result"
        return 0
    fi
    # shellcheck disable=SC2086  # names is a list of words
    if [ "$(echo "$result" | tail -n 1)" = changed ] || ! docker_lists_runtimes $names; then
        echo "$result" | sed '$d' | while IFS= read -r line; do log "daemon.json: $line"; done
        # The daemon behind /var/run/docker.sock writes this pidfile; `pidof dockerd` could also
        # name daemons inside other helpers' containers. pidof only when it names exactly one.
        pid=$(cat /var/run/docker.pid 2>/dev/null || true)
        [ -n "$pid" ] || pid=$(pidof dockerd || true)
        case "$pid" in
            ''|*' '*) log "cannot tell which dockerd to reload (pids: ${pid:-none}); restart it to load the runtimes" ;;
            *) log "reloading dockerd (SIGHUP to pid $pid)"; kill -HUP "$pid" ;;
        esac
    fi
    for _ in $(seq 1 20); do
        # shellcheck disable=SC2086
        docker_lists_runtimes $names && { log "docker runtimes: $names registered"; return 0; }
        sleep 0.5
    done
    log "dockerd does not list the runtimes $names after a reload; see /var/log/layerbench-dockerd.log"
}

setup_runtimes || log "runtime setup failed; the runsc and crun variants will be skipped"

# ---- rootless Podman: one dedicated unprivileged user -----------------------------------------
# Rootless runs never run as whoever calls bench: they run as this user, which exists for them alone
# (its containers, images and volumes in its home; every process it starts is layerbench's, which
# is how bench clean tells leftovers apart). Debian 13's crun 1.21 was tried here too: it needs
# glibc 2.38 (Debian 12 has 2.36) and, run with Debian 13's loader, refuses this kind of host the
# way 1.8.1 does ("cgroups in hybrid mode not supported"), so it is not fetched.
ROOTLESS_USER=layerbench-rootless
ROOTLESS_HOME=/var/lib/$ROOTLESS_USER

as_rootless() {
    setpriv --reuid="$ROOTLESS_USER" --regid="$ROOTLESS_USER" --init-groups -- env -i HOME="$ROOTLESS_HOME" \
        XDG_RUNTIME_DIR="/run/user/$(id -u "$ROOTLESS_USER")" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

free_subid_start() {
    # The first id past every range in the file, and at least 100000 (Debian's SUB_UID_MIN).
    awk -F: 'BEGIN { top = 100000 } NF == 3 && $2 + $3 > top { top = $2 + $3 } END { print top }' "$1" 2>/dev/null || echo 100000
}

setup_rootless_podman() {
    command -v podman >/dev/null 2>&1 || return 0
    if [ "$(id -u)" -ne 0 ]; then
        id "$ROOTLESS_USER" >/dev/null 2>&1 || log "not root: the rootless Podman user $ROOTLESS_USER is missing (run: sudo scripts/host-setup.sh)"
        return 0
    fi
    if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
        useradd --create-home --home-dir "$ROOTLESS_HOME" --shell /usr/sbin/nologin \
            --comment "layerbench rootless Podman" "$ROOTLESS_USER"
        log "created the rootless Podman user $ROOTLESS_USER (home $ROOTLESS_HOME)"
    fi
    chmod 0700 "$ROOTLESS_HOME"
    local file start
    for file in /etc/subuid /etc/subgid; do
        touch "$file"
        if ! grep -q "^$ROOTLESS_USER:" "$file"; then
            start=$(free_subid_start "$file")
            case "$file" in
                */subuid) usermod --add-subuids "$start-$((start + 65535))" "$ROOTLESS_USER" ;;
                *) usermod --add-subgids "$start-$((start + 65535))" "$ROOTLESS_USER" ;;
            esac
            log "$file: $ROOTLESS_USER gets ids $start-$((start + 65535))"
        fi
    done
    local uid
    uid=$(id -u "$ROOTLESS_USER")
    install -d -m 0700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "/run/user/$uid"  # its XDG_RUNTIME_DIR: no login session makes it
    # Its storage: native overlayfs (kernel 5.13+), not the vfs driver Podman falls back to, which
    # copies the whole image for every container.
    install -d -m 0700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$ROOTLESS_HOME/.config" "$ROOTLESS_HOME/.config/containers"
    if [ ! -f "$ROOTLESS_HOME/.config/containers/storage.conf" ]; then
        printf '[storage]\ndriver = "overlay"\n' >"$ROOTLESS_HOME/.config/containers/storage.conf"
        chown "$ROOTLESS_USER:$ROOTLESS_USER" "$ROOTLESS_HOME/.config/containers/storage.conf"
        # A store an earlier podman call made with vfs refuses the new driver: start it afresh.
        if [ -d "$ROOTLESS_HOME/.local/share/containers/storage/vfs" ]; then
            as_rootless podman system reset --force >/dev/null 2>&1 || log "could not reset $ROOTLESS_USER's Podman store"
        fi
    fi
    # slirp4netns opens /dev/net/tun as the user; udev makes it 0666 on a stock Debian, but a host
    # without udev (a microVM's init) leaves it 0600 root.
    if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 600 ]; then
        chmod 0666 /dev/net/tun && log "/dev/net/tun made 0666 (as udev does), for slirp4netns"
    fi
}

setup_rootless_podman || log "rootless Podman setup failed; the rootless variants will be skipped"
exit 0
