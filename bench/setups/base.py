"""The setup contract: what a way of running the app declares, and how the runner drives it.

A setup module supplies a subclass of `Setup`. It DECLARES, as class attributes, what it is:
its name, the path a request takes (`stack`), what a class hears (`narration`), where its cost
comes from (`explanation`), its colour and display order, whether it is the baseline, the roles
of the host processes it reports, the tools whose versions a run records (`tools`: bench.machine
asks every registered setup), and its variant `Options`. Runs store that declaration
(`describe()`), so the report, the charts and compare never need the setup's module.

It IMPLEMENTS small hooks: `check` (available here? else why and the fix), `prepare`, `_launch`,
`_terminate`, and optionally `_abort_launch`, `diagnose`, `_before_polling`, `_after_ready`,
`release` (undo what prepare started for the run), `doctor_lines`, `find_leftovers`, `clean_leftovers`, `prune_caches`, `explain`, `caveats`,
`layer_stack` (the boxes of the layer-stack figure, per variant) and `fixed_processes` (the host
processes it costs once, however many instances run: an engine's daemons).
A setup runs an app (bench.apps: layerbench's python app by default, nginx, a user's image): it
asks the app for its one start description at a place of its kind of layer (`runs_app_as`: host,
container or guest) and turns it into its own launch; no setup knows which app it runs. The lifecycle, `Setup.running()`, lives here once: launch, readiness
(first HTTP 200 on the app's ready path, with a deadline), the start-up phase split, and a stop
that always runs to its end, on an exception, Ctrl-C or SIGTERM too. Launch and stop are not
interruptible halfway: an interrupt is held until they are done, then delivered.
"""

from __future__ import annotations

import abc
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import psutil
from pydantic import BaseModel, ConfigDict

from bench.apps.base import App, Layer, LayerNote
from bench.errors import SetupError
from bench.netutil import LOOPBACK
from bench.roles import APP, Role, RoleProcess
from bench.setups.procutil import signals_deferred
from bench.setups.readiness import wait_until_ready
from bench.tool_versions import Tool

__all__ = ["Instance", "Options", "Pinning", "ProgressFn", "Setup", "SetupError"]


class Options(BaseModel):
    """Variant options a scenario may set for a setup. Subclasses add fields; unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the app side (app, shim, proxy, QEMU) and the load generator may use."""

    app_cpus: tuple[int, ...]
    load_cpus: tuple[int, ...]

    @classmethod
    def default(cls) -> "Pinning":
        """App on the last CPU, load generator on the others (all CPUs if there is only one)."""
        cpus = sorted(psutil.Process().cpu_affinity() or range(psutil.cpu_count() or 1))
        if len(cpus) == 1:
            return cls(app_cpus=tuple(cpus), load_cpus=tuple(cpus))
        return cls(app_cpus=(cpus[-1],), load_cpus=tuple(cpus[:-1]))

    def as_dict(self) -> dict:
        return {"app_cpus": list(self.app_cpus), "load_cpus": list(self.load_cpus)}


@dataclass
class Instance:
    """A started setup: where the app answers and which host processes it costs."""

    port: int  # on `address`
    # Called by the sampler every few ticks: processes may appear after start (container app).
    processes: Callable[[], list[RoleProcess]]
    # Ordered start-up phases in seconds, filled by _launch; running() appends first_200_s.
    phases: dict[str, float] = field(default_factory=dict)
    # Facts about this instance worth storing (image size, accel, container id, ...).
    facts: dict = field(default_factory=dict)
    # Optional: the engine's own accounting of the app (cgroup / docker stats), read at will.
    engine_accounting: Callable[[], dict] | None = None
    # Setup-private state for _terminate (a Popen, a container object, a QEMU handle).
    handle: object = None
    # Where the app answers: 127.0.0.1, or in a split run the one address the load host reaches.
    address: str = LOOPBACK
    # The app's paths, set by Setup.running(): what answers 200 once it serves, and its own view
    # from inside the layer (None: the app has none).
    ready_path: str = "/health"
    stats_path: str | None = "/stats"
    # What its requests cross, hop by hop (bench.metrics.netpath.NetworkPath); None: lo only, as for
    # an app on the host's network answering on 127.0.0.1.
    network_path: object = None

    @property
    def startup_s(self) -> float:
        return sum(self.phases.values())

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"


ProgressFn = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


class Setup(abc.ABC):
    """One way to run the app: as a bare process, in a container, in a VM, ...

    Setups never print: progress goes through the `progress` callback.
    """

    # ---- the declaration (stored with every run by describe()) ---------------------------
    name: ClassVar[str]
    stack: ClassVar[str]  # the path a request takes: "app -> host kernel -> hardware"
    narration: ClassVar[str]  # one or two sentences a class hears when its first trial starts
    explanation: ClassVar[str] = ""  # where its cost comes from, in plain words (the report)
    colour: ClassVar[str | None] = None  # its hue in every chart; None: one from the spare palette
    order: ClassVar[int] = 50  # display order among setups (the baseline comes first regardless)
    baseline: ClassVar[bool] = False  # every ratio is taken against the baseline setup
    roles: ClassVar[tuple[Role, ...]] = (APP,)  # the roles of the host processes it reports
    # The boxes of the layer-stack figure, bottom-up: "kind" or "kind (detail)", the kinds from
    # bench.vocabulary.STACK_LAYERS ("hardware", "host kernel", "container engine", "app", ...).
    stack_layers: ClassVar[tuple[str, ...]] = ()
    # Roles of the processes it costs once per host, not per instance (fixed_processes()).
    fixed_roles: ClassVar[tuple[Role, ...]] = ()
    # The tools it drives whose versions every run records in its machine block (bench.machine).
    tools: ClassVar[tuple[Tool, ...]] = ()
    Options: ClassVar[type[Options]] = Options
    ready_deadline_s: ClassVar[float] = 30.0
    # The kind of layer it starts the app in (the place it gives the app's start, and which of the
    # app's declared notes it adds to its explanation and caveats); None for a setup that starts no app.
    runs_app_as: ClassVar[Layer | None] = None

    def __init__(self, options: Options | dict | None, pinning: Pinning, run_id: str, workdir: Path,
                 progress: ProgressFn = _no_progress, address: str = LOOPBACK, app: App | None = None):
        self.options = options if isinstance(options, Options) else self.Options(**(options or {}))
        self.pinning = pinning
        # The one address the app may listen on: loopback, unless a split run (--load-from) names
        # the address the load host reaches. Never 0.0.0.0.
        self.address = address
        self.run_id = run_id
        self.workdir = Path(workdir)
        self.progress = progress
        if app is None:
            from bench.apps import registry

            app = registry.build(registry.default_kind())  # the app that declares itself the default
        self.app = app

    # ---- availability and housekeeping ----------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def check(cls) -> str | None:
        """None when this setup can run here; else one sentence saying why not and the fix."""

    @classmethod
    def doctor_lines(cls) -> list[str]:
        """Extra facts `bench doctor` prints under this setup (engine version, accelerator)."""
        return []

    @classmethod
    def find_leftovers(cls) -> list[str]:
        """One line per thing of this setup that a dead run left running (cheap: every run asks)."""
        return []

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        """Remove what dead runs left (only run_id's, when given); one line per thing removed."""
        return []

    @classmethod
    def prune_caches(cls) -> list[str]:
        """Remove cached artefacts built from older inputs (images); one line per thing removed."""
        return []

    # ---- one setup variant ------------------------------------------------------------------

    def prepare(self) -> None:
        """Build or find what the setup needs (image, kernel). Idempotent; may be slow once."""

    def release(self) -> None:
        """Stop what prepare() started for the whole run (a private engine). The runner calls it once
        when the run ends, however it ends; safe to call twice."""

    def variant(self) -> str:
        """Short name of the variant ("default", "bridge", "tcg,disk"). Pure: builds and probes
        nothing; before prepare() it may only know what the options asked for."""
        return "default"

    def explain(self) -> str:
        """Where this variant's cost comes from (the declaration's words plus variant-specific ones)."""
        return self.explanation

    def caveats(self) -> list[str]:
        """What a reader must know before trusting this variant's figures (e.g. an emulated CPU)."""
        return []

    def layer_stack(self) -> tuple[str, ...]:
        """This variant's boxes in the layer-stack figure, bottom-up (the declaration's by default)."""
        return self.stack_layers

    def fixed_processes(self) -> list[RoleProcess]:
        """The host processes this setup needs once, whether one instance runs or ten (dockerd,
        containerd), with their `fixed_roles`. The runner samples them apart from the instance's."""
        return []

    def describe(self) -> dict:
        """The declaration of this variant, running its app, as the run stores it (bench.results.LayerRecord)."""
        note = self.app.notes.get(self.runs_app_as, LayerNote()) if self.runs_app_as else LayerNote()
        return {"setup": self.name, "variant": self.variant(), "app": self.app.name, "stack": self.stack,
                "narration": self.narration, "explanation": " ".join(filter(None, (self.explain(), note.explanation))),
                "caveats": self.caveats() + list(note.caveats), "colour": self.colour, "order": self.order,
                "baseline": self.baseline,
                "roles": {role.key: role.as_dict() for role in (*self.roles, *self.fixed_roles)},
                "stack_layers": list(self.layer_stack()), "fixed_roles": [role.key for role in self.fixed_roles]}

    # ---- hooks of the lifecycle ---------------------------------------------------------

    @abc.abstractmethod
    def _launch(self) -> Instance:
        """Start the app; return as soon as it is launched (readiness is checked by the caller).

        Record phases up to launch in `Instance.phases` (e.g. {"spawn_s": 0.01}). It runs with
        Ctrl-C and SIGTERM held back (keep it short); if it raises, `_abort_launch` undoes what it
        created so far.
        """

    @abc.abstractmethod
    def _terminate(self, instance: Instance) -> None:
        """Stop everything _launch started. Must be safe to call twice and after a crash."""

    def _abort_launch(self) -> None:
        """Undo whatever a _launch that raised created before it could return."""

    def diagnose(self, instance: Instance) -> str:
        """Extra words for an error when the app never became ready (e.g. a log tail)."""
        return ""

    def _before_polling(self, instance: Instance, deadline_s: float) -> None:
        """Optional: wait for a cheaper sign of life before /health is polled (a VM's console line)."""

    def _after_ready(self, instance: Instance) -> None:
        """Optional: refine the phases or facts once the first 200 arrived (split first_200_s)."""

    # ---- the lifecycle, in one place ---------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Instance]:
        """Launch, wait for the first 200 on the app's ready path, yield, and always stop.

        Adds `first_200_s` (launch returned -> first 200) to the instance's phases. The launch, the
        stop and the undoing of a launch that raised run with Ctrl-C and SIGTERM held back: an
        interrupt that landed inside them could orphan what they were creating (a container the
        engine made while its client was interrupted). It is delivered as soon as they are done,
        when the instance is known, so the stop below always has something to stop. A launch
        only starts things (slow preparing belongs in prepare()), so the delay is short.
        """
        instance: Instance | None = None
        try:
            with signals_deferred():
                instance = self._launch()
            began = time.perf_counter()
            instance.ready_path, instance.stats_path = self.app.ready_path, self.app.stats_path
            self._before_polling(instance, self.ready_deadline_s)
            remaining_s = max(2.0, self.ready_deadline_s - (time.perf_counter() - began))
            wait_until_ready(instance.port, instance.handle, remaining_s, on_fail=lambda: self.diagnose(instance),
                             path=instance.ready_path, address=instance.address)
            instance.phases["first_200_s"] = time.perf_counter() - began
            self._after_ready(instance)
            with contextlib.suppress(Exception):
                instance.processes()  # discover once now: setups pin helper processes when they find them
            yield instance
        finally:
            with signals_deferred():
                if instance is None:
                    self._abort_launch()
                else:
                    self._terminate(instance)
