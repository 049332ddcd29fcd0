#!/bin/sh
# Entry point of a layerbench test host (baked into the image by tests/testhost_image.py).
# Host keys are made here, not at build time, so no two hosts (or two builds) share one; the
# client's public key comes in TESTHOST_AUTHORIZED_KEY; TESTHOST_DOCKERD=1 starts a Docker engine
# first, so that a host that answers ssh also answers `docker info`; TESTHOST_SSH_PORT moves sshd
# off port 22.
set -eu

ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd
install -d -m 700 -o lab -g lab /home/lab/.ssh
printf '%s\n' "$TESTHOST_AUTHORIZED_KEY" > /home/lab/.ssh/authorized_keys
chown lab:lab /home/lab/.ssh/authorized_keys
chmod 600 /home/lab/.ssh/authorized_keys

if [ "${TESTHOST_DOCKERD:-0}" = 1 ]; then
    # runc mounts the cgroup hierarchies read-only; the inner engine must create cgroups under them
    # ("mkdir /sys/fs/cgroup/cpuset/docker: read-only file system" otherwise). Needs CAP_SYS_ADMIN.
    for mountpoint in $(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts); do
        mount -o remount,bind,rw "$mountpoint"
    done
    dockerd >/var/log/dockerd.log 2>&1 &
    tries=0
    until docker info >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 240 ]; then
            echo "testhost: dockerd did not answer within 60 s:" >&2
            tail -n 5 /var/log/dockerd.log >&2
            exit 1
        fi
        sleep 0.25
    done
fi

exec /usr/sbin/sshd -D -e -p "${TESTHOST_SSH_PORT:-22}"
