"""What installing layerbench on a host costs, step by step, from a cold cache (one test host).

    .venv/bin/python scripts/prototypes/fleet_install_timing.py

Moves ~/.cache/layerbench/fleet aside for the measurement (and puts it back), then times: building
the wheel (cold, cached), the first probe over ssh, fetching the wheelhouse for the host's Python,
the first install into a venv there, and the second (reused) one. Prints the facts as JSON.
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.testhosts import start_hosts, write_hosts_file
from bench.images import cache_root
from bench.fleet.hostsfile import load_hosts
from bench.fleet.ssh import SshSession
from bench.fleet.remote import RemotePlace
from bench.fleet.wheel import build_wheel
from bench.fleet.wheelhouse import wheelhouse_for, Interpreter

facts = {}
fleet_cache = cache_root() / "fleet"
aside = cache_root() / "fleet-aside"
if fleet_cache.exists():
    fleet_cache.rename(aside)
try:
    t = time.perf_counter(); wheel = build_wheel(); facts["wheel_cold_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter(); build_wheel(); facts["wheel_cached_s"] = round(time.perf_counter() - t, 3)
    facts["wheel_bytes"] = wheel.path.stat().st_size
    with start_hosts(1) as hosts:
        entry = load_hosts(write_hosts_file(hosts, Path(tempfile.mkdtemp()) / "hosts.yaml"))["lab1"]
        with SshSession() as session:
            place = RemotePlace(session.to(entry))
            t = time.perf_counter(); probe = place.inspect(); facts["probe_first_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter(); house = wheelhouse_for(wheel, Interpreter(probe.python, probe.glibc, probe.arch))
            facts["wheelhouse_cold_s"] = round(time.perf_counter() - t, 2)
            facts["wheelhouse_files"] = len(list(house.glob("*.whl")))
            facts["wheelhouse_mb"] = round(sum(p.stat().st_size for p in house.glob("*.whl")) / 1e6, 1)
            t = time.perf_counter(); said = place.prepare(wheel, print); facts["install_cold_s"] = round(time.perf_counter() - t, 2)
            place.probe = None
            t = time.perf_counter(); said2 = place.prepare(wheel, print); facts["install_again_s"] = round(time.perf_counter() - t, 3)
            facts["again_said"] = said2
            t = time.perf_counter(); place.ssh.check("true", "x"); facts["ssh_true_master_s"] = round(time.perf_counter() - t, 4)
finally:
    shutil.rmtree(fleet_cache, ignore_errors=True)
    if aside.exists():
        aside.rename(fleet_cache)
facts["loadavg"] = open("/proc/loadavg").read().split()[:3]
print(json.dumps(facts, indent=1))
