"""What the report shows, as plain strings and lists built from the model; the template only lays
it out. Every figure comes from the run's cells; the words about each layer come from what the run
stored about it (its setup's declaration), so no setup is named here."""

from __future__ import annotations

from dataclasses import dataclass

from bench.model import FORMAT_VERSION, LayerKey, Machine, Run, Split
from bench.outputs import rows
from bench.figures import metric
from bench.vocabulary import VERDICT_MEANING, fmt, label, percent


def _fixed_points(run: Run, key: LayerKey) -> list[str]:
    fixed = run.layer_cost(key.setup, key.variant, key.app).fixed
    if fixed is None:
        return []
    parts = ", ".join(f"{run.roles[key].label if key in run.roles else key} "
                      f"{rows.figure('memory_pss_mb', figures.pss_mb, 'MiB')}" for key, figures in fixed.roles.items())
    return [f"Fixed cost, paid once per host however many instances run: {parts} (PSS), together "
            f"{rows.figure('memory_pss_mb', fixed.pss_mb, 'MiB')}, using {fmt(fixed.total.cpu_cores, 3)} cores of CPU on average "
            f"while its trials ran. None of it is in this layer's per-instance figures."]


@dataclass(frozen=True)
class LayerNote:
    """A layer in words: the path a request takes, where its cost comes from, this run's figures."""

    label: str
    title: str
    text: str
    caveats: list[str]
    points: list[str]
    verdicts: list[str]
    colour: str


def layer_notes(run: Run) -> list[LayerNote]:
    """Per setup variant: where its cost comes from, in plain words, with this run's figures."""
    notes = []
    for layer in run.layers:
        key = run.layer_key_of(layer)
        cells = run.cells_of(layer.setup, layer.variant, layer.app)
        verdicts = [f"{o.workload}: {metric(o.metric).label} "
                    f"{o.verdict if o.state in ('same', 'undecided') else o.state + ', ' + o.verdict}" for o in run.overhead
                    if o.layer_key == key and o.metric in ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")]
        points = rows.role_points(run, cells)
        startup = [f"{rows.figure('startup_s', cell.median('startup_s'), 's')} ({cell.workload})" for cell in cells
                   if cell.median("startup_s") is not None]
        if startup:
            points.append(f"Launch to first HTTP 200: {', '.join(startup)} (median).")
        points += _fixed_points(run, key)
        notes.append(LayerNote(label(*key), f"{label(*key)}: {layer.stack}" if layer.stack else label(*key),
                               layer.explanation or "Its figures are in the tables below.", layer.caveats, points,
                               verdicts, run.colour(*key)))
    return notes


def settings(run: Run) -> list[tuple[str, str]]:
    """The machine and the settings, to reproduce the run or to distrust a comparison."""
    info, machine = run.info, run.info.machine
    versions = machine.versions
    memory = machine.memory_bytes
    pinning = info.pinning
    scenario = info.scenario
    workloads = "; ".join(f"{w.name}: {w.endpoint} {w.mode or ''}, "
                          f"{w.connections} connections, {w.duration} s after {w.warmup} s "
                          f"warm-up, {w.load} load generator" for w in scenario.workloads or [])
    fraction = run.sampler_cpu_fraction
    return [
        ("host", f"{_dash(machine.hostname)} ({_dash(machine.os)})"),
        ("kernel", _dash(machine.kernel)),
        ("CPU", f"{_dash(machine.cpu_model)}, {_dash(machine.cpus_logical)} logical CPUs"),
        ("memory", fmt(memory / 1024**3, 1, "GiB") if isinstance(memory, (int, float)) else "–"),
        ("/dev/kvm present", str(_dash(machine.kvm_device))),
        ("pinning", f"app side on CPUs {pinning.app_cpus}, load generator on {pinning.load_cpus}"
         if pinning else "not pinned"),
        ("python", f"{_dash(machine.python)} ({_dash(machine.python_executable)})"),
        ("versions", ", ".join(f"{name} {value}" for name, value in versions.items() if value) or "–"),
        ("app" if len(run.apps) < 2 else "apps", ", ".join(run.apps) or "–"),
        ("scenario", f"{_dash(scenario.name)}: {scenario.description or ''}"),
        ("workloads", workloads or "–"),
        ("repeats, order", f"{_dash(scenario.repeat)} per cell, {_dash(scenario.order)}, start "
                           f"{_dash(scenario.start)}"),
        ("command line", " ".join(info.command_line) or "–"),
        ("seed", str(info.seed)),
        ("started, finished", f"{info.created_at} → {info.finished_at or 'not finished'}"),
        ("sampler cost", f"{fraction:.2%} of one core (median over trials)" if fraction is not None else "–"),
        *_split_settings(info.split),
    ]


def _dash(value) -> object:
    return "–" if value is None else value


def _split_settings(split: Split | None) -> list[tuple[str, str]]:
    """A split run's load host and its machine, beside this machine's (bench run --load-from)."""
    if split is None:
        return []
    load = split.load_machine or Machine()
    return [("load from", f"{_dash(split.load_host)} ({_dash(split.load_address)}); the app listened on "
                          f"{_dash(split.listen_address)} only"),
            ("load host", f"{_dash(load.hostname)}: {_dash(load.cpu_model)}, {_dash(load.cpus_logical)} "
                          f"logical CPUs, kernel {_dash(load.kernel)}, python {_dash(load.python)}")]


def report_context(run: Run, embedded: list) -> dict:
    """Everything the template shows; `embedded` holds the charts as data: URIs."""
    from bench.outputs import summary
    from bench.outputs.report.journey import journey_section

    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "scenario": run.info.scenario_name or "–",
        "description": run.info.description,
        "confidence": "95%",
        "baseline": run.baseline,
        "setups": [label(*key) for key in run.layer_keys],
        "apps": run.apps,
        "app_rows": rows.app_rows(run),
        "settings": settings(run),
        "warnings": [doubt.text for doubt in run.doubts()],
        # Folded unless a doubt threatens every figure (an unfinished run, failed trials, an unreadable file).
        "warnings_open": any(doubt.kind in ("incomplete", "failed", "unreadable") for doubt in run.doubts()),
        "verdict_meaning": VERDICT_MEANING.format(effect=percent(run.min_effect)).capitalize(),
        "rounds": max((row.ratio.n for row in run.overhead), default=0),
        "headline": next((chart for chart in embedded if chart.name == "headline"), None),
        "layer_stack": next((chart for chart in embedded if chart.name == "layer_stack"), None),
        "apps_chart": next((chart for chart in embedded if chart.name == "by_app"), None),
        "charts": [chart for chart in embedded if chart.name not in ("headline", "by_app", "layer_stack", "journey")],
        **journey_section(run, embedded),
        "layers": layer_notes(run),
        "load_rows": rows.load_rows(run),
        "cost_rows": rows.cost_rows(run),
        "role_rows": rows.role_rows(run),
        "density_rows": rows.density_rows(run),
        "cost_split_rows": rows.layer_cost_rows(run) if any(cost.fixed for cost in run.layer_costs) else [],
        "overhead_rows": rows.verdict_rows(run),
        "summary_version": summary.SUMMARY_VERSION,
        "format_version": FORMAT_VERSION,
    }
