#!/usr/bin/env bash
# Developer set-up, run by hand by a developer of layerbench's several-machines code (the tests start
# theirs through tests/testhosts.py): test hosts, containers with sshd (and their own dockerd with
# --docker) on a network of their own.
#   scripts/testhosts.sh build          build the image (debootstrap + docker import) unless cached
#   scripts/testhosts.sh up 2 --docker  start two hosts, print `ssh -F CONFIG lab1`, Ctrl-C removes all
#       ... --inventory lab.yml         also an Ansible inventory (group labs; lab1 with become, lab2 on port 2222)
#   scripts/testhosts.sh clean          remove what a killed session left (label layerbench-testhost)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" -m tests.testhosts "$@"
