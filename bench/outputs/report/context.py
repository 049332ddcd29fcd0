"""What the report shows, as plain strings and lists built from the model; the template only lays
it out. Every figure comes from the run's cells; the words about each layer come from what the run
stored about it (its setup's declaration), so no setup is named here."""

from __future__ import annotations


from bench.model import FORMAT_VERSION, Cell, FixedFigures, LayerKey, Machine, Run, Split
from bench.outputs.plots.cost import memory_layers_of
from bench.outputs.report.css import css_colour
from bench.outputs.plots._common import colour
from bench.roles import APP
from bench.figures import HEADLINE_METRICS, metric
from bench.vocabulary import LATENCY_LABELS, VERDICT_MEANING, finite, fmt, fmt_interval, label, percent

MIN_SHOWN_US = 0.5  # a helper's CPU per request below this is noise of the sampler's 10 ms ticks


def _per_workload(pairs: list[tuple[str, float]], unit: str, digits: int | None = None) -> str:
    return ", ".join(f"{fmt(value, digits, unit)} ({workload})" for workload, value in pairs)


def _role_points(run: Run, cells: list[Cell]) -> list[str]:
    points = []
    for key in dict.fromkeys(role for cell in cells for role in cell.roles):
        role = run.roles.get(key)
        name = role.label if role else key
        memory = [(c.workload, c.roles[key].pss_mb) for c in cells if key in c.roles and finite(c.roles[key].pss_mb)]
        cpu = [(c.workload, c.roles[key].cpu_us_per_request) for c in cells
               if key in c.roles and c.roles[key].cpu_us_per_request is not None]
        cpu = [(workload, value) for workload, value in cpu if value >= MIN_SHOWN_US]
        if memory:
            points.append(f"{name}: memory (PSS) {_per_workload(memory, 'MiB')}.")
        if cpu and key != APP.key:  # the app's own CPU is in the tables; helpers are news
            points.append(f"{name}: CPU per request {_per_workload(cpu, 'µs')}.")
        if role and role.contains_app:
            for cell in cells:
                layers = memory_layers_of(run, cell)
                rest = layers.get(f"{key}.rest")
                if rest and APP.key in layers:
                    points.append(f"{cell.workload}: {name} memory (PSS) {fmt(cell.roles[key].pss_mb, unit='MiB')}"
                                  f", of which the app itself (seen from inside its layer) "
                                  f"{fmt(layers[APP.key][0], unit='MiB')}: {rest[1]} ≈ {fmt(rest[0], unit='MiB')}.")
    return points


def _fixed_points(run: Run, key: LayerKey) -> list[str]:
    fixed = run.layer_cost(key.setup, key.variant, key.app).fixed
    if fixed is None:
        return []
    parts = ", ".join(f"{run.roles[key].label if key in run.roles else key} {fmt(figures.pss_mb, unit='MiB')}"
                      for key, figures in fixed.roles.items())
    return [f"Fixed cost, paid once per host however many instances run: {parts} (PSS), together "
            f"{fmt(fixed.pss_mb, unit='MiB')}, using {fmt(fixed.total.cpu_cores, 3)} cores of CPU on average "
            f"while its trials ran. None of it is in this layer's per-instance figures."]


def cost_split_rows(run: Run) -> list[dict]:
    """Per layer: what one more instance costs (its own processes) and what its engine costs once."""
    rows = []
    for cost in run.layer_costs:
        fixed = cost.fixed.total if cost.fixed else FixedFigures()
        rows.append({"label": label(cost.setup, cost.variant), "colour": css_colour(colour(run, cost.setup,
                                                                                       cost.variant)),
                     "pss": fmt(cost.per_instance_mb.get("pss")), "uss": fmt(cost.per_instance_mb.get("uss")),
                     "source": cost.per_instance_from or "–", "fixed_pss": fmt(fixed.pss_mb),
                     "fixed_uss": fmt(fixed.uss_mb), "fixed_cpu": fmt(fixed.cpu_cores, 3),
                     "fixed_roles": ", ".join(run.roles[key].label if key in run.roles else key
                                              for key in (cost.fixed.roles if cost.fixed else {})) or "none"})
    return rows


def layer_notes(run: Run) -> list[dict]:
    """Per setup variant: where its cost comes from, in plain words, with this run's figures."""
    notes = []
    for layer in run.layers:
        key = run.layer_key_of(layer)
        cells = run.cells_of(layer.setup, layer.variant, layer.app)
        verdicts = [f"{o.workload}: {metric(o.metric).label} "
                    f"{o.verdict if o.state in ('same', 'undecided') else o.state + ', ' + o.verdict}" for o in run.overhead
                    if o.layer_key == key and o.metric in ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")]
        points = _role_points(run, cells)
        startup = [(cell.workload, cell.median("startup_s")) for cell in cells if cell.median("startup_s") is not None]
        if startup:
            points.append(f"Launch to first HTTP 200: {_per_workload(startup, 's')} (median).")
        points += _fixed_points(run, key)
        notes.append({"label": label(*key), "title": f"{label(*key)}: {layer.stack}" if layer.stack else label(*key),
                      "text": layer.explanation or "Its figures are in the tables below.",
                      "caveats": layer.caveats, "points": points, "verdicts": verdicts,
                      "colour": css_colour(colour(run, *key))})
    return notes


def load_rows(run: Run) -> list[dict]:
    rows = []
    for cell in run.cells:
        latency = cell.latency_ms or {}
        rows.append({"label": cell.label, "colour": css_colour(colour(run, *cell.layer_key)),
                     "workload": cell.workload, "repeats": cell.repeats, "failed": cell.failed,
                     "throughput": fmt_interval(cell.estimate("throughput_rps") if cell.has_load else None, 0),
                     **{name: fmt(latency.get(name)) for name in LATENCY_LABELS},
                     "flags": "; ".join(caveat.flag for caveat in cell.caveats() if caveat.kind in ("stall", "busy")),
                     "p99": fmt_interval(cell.estimate("latency_p99_ms") if cell.has_load else None),
                     "app_ms_p50": fmt(cell.app_ms_p50, 3), "noisy": cell.noisy, "spread": f"{cell.spread:.0%}"})
    return rows


def cost_rows(run: Run) -> list[dict]:
    rows = []
    for cell in run.cells:
        cpu, memory, inside = cell.cpu_us_per_request or {}, cell.memory_mb or {}, cell.inside
        rows.append({"label": cell.label, "colour": css_colour(colour(run, *cell.layer_key)),
                     "workload": cell.workload, "cpu_user": fmt(cpu.get("user")), "cpu_sys": fmt(cpu.get("sys")),
                     "rss": fmt(memory.get("rss")), "uss": fmt(memory.get("uss")), "pss": fmt(memory.get("pss")),
                     "startup": fmt(cell.median("startup_s"), 3), "inside_cpu": fmt(inside.get("cpu_us_per_request")),
                     "inside_rss": fmt(inside.get("rss_mb")), "inside_kernel": inside.get("kernel") or "–",
                     "accel": cell.accel or "–"})
    return rows


def role_rows(run: Run) -> list[dict]:
    rows = []
    for cell in run.cells:
        for key, figures in cell.roles.items():
            role = run.roles.get(key)
            rows.append({"label": cell.label, "colour": css_colour(colour(run, *cell.layer_key)),
                         "workload": cell.workload, "role": role.label if role else key,
                         "cpu_user": fmt(figures.cpu_user_us_per_request),
                         "cpu_sys": fmt(figures.cpu_sys_us_per_request),
                         "rss": fmt(figures.rss_mb), "uss": fmt(figures.uss_mb), "pss": fmt(figures.pss_mb),
                         "processes": fmt(figures.processes, 0)})
    return rows


def density_rows(run: Run) -> list[dict]:
    """Per setup variant and instance count: memory per instance by each measure, and the cross-check."""
    rows = []
    for cell in run.cells:
        figures = cell.memory_per_instance_mb
        if figures is None:
            continue
        rows.append({"label": cell.label, "colour": css_colour(colour(run, *cell.layer_key)),
                     "instances": cell.instances or "–", "uss": fmt(figures.get("uss")), "pss": fmt(figures.get("pss")),
                     "rss": fmt(figures.get("rss")), "drop": fmt(figures.get("available_drop")),
                     "fixed": fmt(cell.fixed.pss_mb if cell.fixed else None),
                     "flag": "; ".join(c.flag for c in cell.caveats() if c.kind == "memory_mismatch")})
    return rows


def overhead_rows(run: Run) -> list[dict]:
    return [{"label": row.label, "colour": css_colour(colour(run, *row.layer_key)),
             "workload": row.workload, "metric": metric(row.metric).title, "better": metric(row.metric).direction,
             "ratio": fmt_interval(row.ratio, 2), "state": row.state, "verdict": row.verdict, "same": row.same,
             "unpaired": fmt_interval(row.unpaired, 2) if row.unpaired is not None else "–"}
            for row in run.overhead if row.metric in HEADLINE_METRICS + ("latency_p50_ms",)]


def app_rows(run: Run) -> list[dict]:
    """A run of several apps: per layer and workload, each app's ratios to its own baseline."""
    rows = []
    for row in run.by_app:
        for entry in row.entries:
            share = entry.layer_share
            rows.append({"layer": row.label, "colour": css_colour(colour(run, row.setup, row.variant)),
                         "workload": row.workload, "app": entry.app, "throughput": fmt_interval(entry.throughput, 2),
                         "cpu": fmt_interval(entry.cpu, 2), "base_cpu": fmt(entry.base_cpu_us),
                         "added_cpu": fmt(entry.added_cpu_us), "share": f"{share:.0%}" if share is not None else "–"})
    return rows


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


def report_context(run: Run, embedded: list[dict]) -> dict:
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
        "app_rows": app_rows(run),
        "settings": settings(run),
        "warnings": [doubt.text for doubt in run.doubts()],
        # Folded unless a doubt threatens every figure (an unfinished run, failed trials, an unreadable file).
        "warnings_open": any(doubt.kind in ("incomplete", "failed", "unreadable") for doubt in run.doubts()),
        "verdict_meaning": VERDICT_MEANING.format(effect=percent(run.min_effect)).capitalize(),
        "rounds": max((row.ratio.n for row in run.overhead), default=0),
        "headline": next((chart for chart in embedded if chart["name"] == "headline"), None),
        "layer_stack": next((chart for chart in embedded if chart["name"] == "layer_stack"), None),
        "apps_chart": next((chart for chart in embedded if chart["name"] == "by_app"), None),
        "charts": [chart for chart in embedded if chart["name"] not in ("headline", "by_app", "layer_stack", "journey")],
        **journey_section(run, embedded),
        "layers": layer_notes(run),
        "load_rows": load_rows(run),
        "cost_rows": cost_rows(run),
        "role_rows": role_rows(run),
        "density_rows": density_rows(run),
        "cost_split_rows": cost_split_rows(run) if any(cost.fixed for cost in run.layer_costs) else [],
        "overhead_rows": overhead_rows(run),
        "summary_version": summary.SUMMARY_VERSION,
        "format_version": FORMAT_VERSION,
    }
