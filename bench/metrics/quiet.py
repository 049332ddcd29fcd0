"""Is the machine quiet? What other processes use of the CPUs, and waiting until it is little.

Other processes = every CPU second the host spent in user and kernel mode, minus this process and
its children (the runner, the load generator, the setups it started). Steal time (the hypervisor
giving our vCPUs to a neighbour) is not counted: no waiting here can change it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import psutil

QUIET_FOR_S = 2.0  # the machine must stay quiet this long before a round starts
MAX_WAIT_S = 60.0  # then the round starts anyway, and the run says the machine never went quiet
SAMPLE_S = 0.5


def _busy_s() -> float:
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _own_s() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system (the reaped ones)
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def others_cpu_cores(interval_s: float = SAMPLE_S) -> float:
    """CPU cores other processes used over the next `interval_s` seconds."""
    busy, own = _busy_s(), _own_s()
    time.sleep(interval_s)
    return max(0.0, (_busy_s() - busy) - (_own_s() - own)) / interval_s


@dataclass(frozen=True)
class QuietWait:
    """What waiting for a quiet machine before a round came to."""

    waited_s: float
    others_cores: float  # the last reading
    quiet: bool  # False: MAX_WAIT_S passed and the round started anyway

    def as_dict(self) -> dict:
        return {"waited_s": round(self.waited_s, 2), "others_cores": round(self.others_cores, 3), "quiet": self.quiet}


def wait_until_quiet(threshold_cores: float, say: Callable[[str], None] = lambda message: None,
                     max_wait_s: float = MAX_WAIT_S, read: Callable[[], float] = others_cpu_cores,
                     clock: Callable[[], float] = time.monotonic) -> QuietWait:
    """Return once other processes used at most `threshold_cores` for QUIET_FOR_S in a row, or after
    `max_wait_s`; `say` hears once that we wait, and why."""
    began = clock()
    quiet_since = None
    said = False
    others = read()
    while True:
        now = clock()
        if others <= threshold_cores:
            quiet_since = now if quiet_since is None else quiet_since
            if now - quiet_since >= QUIET_FOR_S:
                return QuietWait(now - began, others, True)
        else:
            quiet_since = None
            if not said:
                say(f"waiting for a quiet machine: other processes use {others:.2f} cores "
                    f"(at most {threshold_cores:.2f} wanted, for {QUIET_FOR_S:g} s; up to {max_wait_s:g} s)")
                said = True
        if now - began >= max_wait_s:
            return QuietWait(now - began, others, False)
        others = read()
