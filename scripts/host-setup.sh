#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for layerbench: the system packages the setups need
# and a running Docker daemon. Idempotent; safe to run on every `make demo` / `make test`.
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
command -v ssh >/dev/null 2>&1 || need_packages+=(openssh-client)  # fleet and split runs (bench run --hosts)
# `make test` also wants Chromium, to screenshot the HTML report, and debootstrap, to build the
# image of the test hosts that fleet and split runs are tested against (LAYERBENCH_TEST_TOOLS=1).
if [ "${LAYERBENCH_TEST_TOOLS:-0}" = 1 ]; then
    command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
    command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_packages+=(debootstrap)
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
exit 0
