"""The HTML report of a run: one self-contained file (charts embedded), from stored results only.

Every figure in it comes from the run's record and summary; the words around them are fixed
explanations of where each layer's cost comes from. Autoescaping is on for everything: scenario
names and descriptions come from user files.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import jinja2

from bench.plots import CHARTS, CHARTS_DIR, LoadedRun, render_loaded
from bench.results import atomic_write
from bench.stats import METRIC_WORDS

REPORT_FILE = "report.html"
TEMPLATES = Path(__file__).parent / "templates"

METRIC_NAMES = {
    "throughput_rps": "throughput (req/s)",
    "latency_p50_ms": "p50 latency (ms)",
    "latency_p99_ms": "p99 latency (ms)",
    "cpu_us_per_request": "CPU per request (µs)",
    "memory_rss_mb": "memory, RSS (MB)",
    "startup_s": "start-up (s)",
}


def fmt(value, digits: int | None = None, unit: str = "") -> str:
    """A figure for a table: thousands separators, sensible digits, '-' when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if digits is None:
        magnitude = abs(value)
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 0.1 else 3
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def interval(estimate: dict | None, digits: int | None = None) -> str:
    """'median [low–high]' for an estimate dict, '-' when missing."""
    if not estimate:
        return "–"
    return f"{fmt(estimate['median'], digits)} [{fmt(estimate['low'], digits)}–{fmt(estimate['high'], digits)}]"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["interval"] = interval
    return env


def embed_png(path: Path) -> str:
    """A data: URI for a PNG, so the report is one file that can be mailed or projected offline."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _label(setup: str, variant: str) -> str:
    return setup if variant == "default" else f"{setup} ({variant})"


def _by_workload(run: LoadedRun, setup: str, variant: str) -> list[dict]:
    return [row for row in run.summary["results"] if (row["setup"], row["variant"]) == (setup, variant)]


def _role_figure(rows: list[dict], role: str, field: str) -> list[tuple[str, float]]:
    return [(row["workload"], row["roles"][role][field]) for row in rows
            if role in row["roles"] and isinstance(row["roles"][role].get(field), (int, float))
            and math.isfinite(row["roles"][role][field])]


def _per_workload(pairs: list[tuple[str, float]], unit: str, digits: int | None = None) -> str:
    return ", ".join(f"{fmt(value, digits, unit)} ({workload})" for workload, value in pairs)


def layer_notes(run: LoadedRun) -> list[dict]:
    """Per setup variant present: where its cost comes from, in plain words, with this run's figures."""
    notes = []
    overhead = run.summary["overhead"]
    for setup, variant in run.cells:
        rows = _by_workload(run, setup, variant)
        mine = [o for o in overhead if (o["setup"], o["variant"]) == (setup, variant)]
        verdicts = [f"{o['workload']}: {METRIC_NAMES.get(o['metric'], o['metric'])} {o['verdict']}"
                    for o in mine if o["metric"] in ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")]
        points: list[str] = []
        accel = next((row["accel"] for row in rows if row.get("accel")), None)
        if setup == "bare":
            title = "bare process: app → host kernel"
            text = ("The app runs as an ordinary host process and talks straight to the host kernel. This is the "
                    "baseline: every ratio in this report is a setup's figure divided by this one.")
            rss = _role_figure(rows, "app", "rss_mb")
            if rss:
                points.append(f"The app's resident memory: {_per_workload(rss, 'MB')}.")
        elif setup == "container":
            title = f"container ({variant}): app → namespaces + cgroups + overlayfs → host kernel"
            text = ("The app is still a host process, run by the same kernel: namespaces give it its own view "
                    "(process ids, mounts, network), cgroups account and limit its resources, and its files come "
                    "through overlayfs, a union of image layers. None of these adds work to an ordinary request, "
                    "so CPU-bound work costs about the same as bare. A small runtime process (the containerd "
                    "shim) stays alive per container.")
            shim = _role_figure(rows, "runtime", "rss_mb")
            if shim:
                points.append(f"Container runtime (shim) memory: {_per_workload(shim, 'MB')}.")
            proxy_user = _role_figure(rows, "proxy", "cpu_user_us_per_request")
            proxy_sys = dict(_role_figure(rows, "proxy", "cpu_sys_us_per_request"))
            if proxy_user:
                spent = [(w, u + proxy_sys.get(w, 0.0)) for w, u in proxy_user]
                text += (" With a published port (bridge networking), every connection goes through docker-proxy, "
                         "a userland process that copies each byte between two sockets, and through NAT rules "
                         "that rewrite packets; that is the cost a tiny request feels most. layerbench pins the "
                         "shim and the proxy to the app's CPUs, so the proxy's work comes out of the same CPU "
                         "budget the bare app had to itself.")
                points.append(f"docker-proxy CPU per request: {_per_workload(spent, 'µs')}.")
            elif variant.split(",")[0] == "host":
                text += (" With host networking the container shares the host's network stack: no proxy and no "
                         "NAT on the request path.")
        elif setup == "vm":
            title = f"virtual machine ({variant}): app → guest kernel → virtual devices (QEMU) → hypervisor"
            text = ("The app runs on its own guest kernel inside QEMU. Every packet crosses a virtual network "
                    "device that QEMU emulates (here user-mode networking with a forwarded port), and the guest "
                    "kernel, its page cache and the emulated devices all live in QEMU's memory on the host.")
            if accel == "tcg":
                text += (" This VM ran under TCG: software emulation, where QEMU translates every guest "
                         "instruction into host instructions because hardware virtualization (KVM) was not "
                         "usable. Its figures show what emulation costs; they are NOT what the same VM would "
                         "cost under KVM, which runs guest code directly on the CPU and is far closer to bare.")
            elif accel == "kvm":
                text += (" It ran under KVM: guest code runs directly on the CPU, and the hypervisor steps in only "
                         "for privileged operations and device access.")
            for row in rows:
                qemu = (row["roles"].get("hypervisor") or {}).get("rss_mb")
                inside = (row.get("inside") or {}).get("rss_mb")
                if isinstance(qemu, float) and isinstance(inside, float) and math.isfinite(qemu) and inside > 0:
                    points.append(f"{row['workload']}: QEMU resident memory {fmt(qemu, unit='MB')}, of which the "
                                  f"app itself (seen from inside the guest) {fmt(inside, unit='MB')}: guest kernel "
                                  f"+ devices ≈ {fmt(qemu - inside, unit='MB')}.")
        else:
            title = f"{setup} ({variant})"
            text = "A setup this report has no description for; its figures are in the tables below."
        startup = [(row["workload"], row["startup_s"]) for row in rows if isinstance(row["startup_s"], float)]
        if startup:
            points.append(f"Launch to first HTTP 200: {_per_workload(startup, 's')} (median).")
        notes.append({"setup": setup, "variant": variant, "title": title, "text": text, "points": points,
                      "verdicts": verdicts, "accel": accel})
    return notes


def warnings_of(run: LoadedRun) -> list[str]:
    """Everything a reader must know before trusting a figure: unfinished run, failures, skips, noise, TCG."""
    record, summary = run.record, run.summary
    found = []
    if record.effective_status() != "complete":
        found.append(f"This run is {record.effective_status()}: it did not finish every trial it planned "
                     f"({len(record.trials)} recorded of {len(record.order) or 'an unknown number'} started). "
                     f"Figures cover only the trials that ran.")
    for trial in record.trials:
        if trial.status == "failed":
            found.append(f"Failed trial {trial.setup} ({trial.variant}) / {trial.workload} / repeat "
                         f"{trial.repeat + 1}: {trial.error or 'no reason recorded'}")
    for skipped in record.skipped:
        what = skipped.get("variant") or skipped.get("setup") or "a setup"
        found.append(f"Skipped {what}: {skipped.get('reason') or 'no reason recorded'}")
    for row in summary["results"]:
        if row.get("busy_repeats"):
            found.append(f"Busy machine during {_label(row['setup'], row['variant'])} / {row['workload']}: in "
                         f"{row['busy_repeats']} repeat(s) other processes used up to {row['foreign_cpu_cores']:.2f} "
                         f"cores while it was measured; those figures include their interference.")
        if row["noisy"]:
            found.append(f"Noisy: {_label(row['setup'], row['variant'])} / {row['workload']}: repeats spread "
                         f"{row['spread']:.0%} of their median; treat its figures and ratios with care, or run "
                         f"more repeats.")
        if row["errors_by_kind"]:
            kinds = ", ".join(f"{kind} × {count}" for kind, count in row["errors_by_kind"].items())
            found.append(f"Request errors in {_label(row['setup'], row['variant'])} / {row['workload']}: {kinds}")
        if row["repeats"] < 2 and row["throughput_rps"]:
            found.append(f"Only {row['repeats']} repeat for {_label(row['setup'], row['variant'])} / "
                         f"{row['workload']}: its interval has zero width and says nothing about spread.")
    accels = {row["accel"] for row in summary["results"] if row["setup"] == "vm"}
    if "tcg" in accels:
        found.append("The VM ran under TCG (software emulation, no KVM): its figures are far worse than a VM "
                     "under KVM would give. Compare with care.")
    if summary["results"] and not any(row["setup"] == "bare" for row in summary["results"]):
        found.append("No bare baseline in this run: no overhead ratios can be computed.")
    return found


def _load_rows(run: LoadedRun) -> list[dict]:
    rows = []
    for row in run.summary["results"]:
        latency = row["latency_ms"] or {}
        rows.append({"label": _label(row["setup"], row["variant"]), "setup": row["setup"],
                     "workload": row["workload"], "repeats": row["repeats"], "failed": row["failed"],
                     "throughput": interval(row["throughput_rps"], 0), "p50": fmt(latency.get("p50")),
                     "p90": fmt(latency.get("p90")), "p99": interval(row["latency_p99_ms_ci"]),
                     "p999": fmt(latency.get("p999")), "app_ms_p50": fmt(row["app_ms_p50"], 3),
                     "noisy": row["noisy"], "spread": f"{row['spread']:.0%}"})
    return rows


def _cost_rows(run: LoadedRun) -> list[dict]:
    rows = []
    for row in run.summary["results"]:
        cpu = row["cpu_us_per_request"] or {}
        memory = row["memory_mb"] or {}
        inside = row["inside"] or {}
        rows.append({"label": _label(row["setup"], row["variant"]), "setup": row["setup"],
                     "workload": row["workload"], "cpu_user": fmt(cpu.get("user")), "cpu_sys": fmt(cpu.get("sys")),
                     "rss": fmt(memory.get("rss")), "uss": fmt(memory.get("uss")), "pss": fmt(memory.get("pss")),
                     "startup": fmt(row["startup_s"], 3), "inside_cpu": fmt(inside.get("cpu_us_per_request")),
                     "inside_rss": fmt(inside.get("rss_mb")), "inside_kernel": inside.get("kernel") or "–",
                     "accel": row["accel"] or "–"})
    return rows


def _role_rows(run: LoadedRun) -> list[dict]:
    rows = []
    for row in run.summary["results"]:
        for role, figures in row["roles"].items():
            rows.append({"label": _label(row["setup"], row["variant"]), "setup": row["setup"],
                         "workload": row["workload"], "role": role,
                         "cpu_user": fmt(figures.get("cpu_user_us_per_request")),
                         "cpu_sys": fmt(figures.get("cpu_sys_us_per_request")),
                         "rss": fmt(figures.get("rss_mb")), "uss": fmt(figures.get("uss_mb")),
                         "processes": fmt(figures.get("processes"), 0)})
    return rows


def _overhead_rows(run: LoadedRun) -> list[dict]:
    return [{"label": _label(row["setup"], row["variant"]), "setup": row["setup"], "workload": row["workload"],
             "metric": METRIC_NAMES.get(row["metric"], row["metric"]),
             "better": "higher is better" if METRIC_WORDS.get(row["metric"], ("", "", False))[2]
             else "lower is better",
             "ratio": interval(row["ratio"], 2), "verdict": row["verdict"],
             "same": row["verdict"] == "no measurable difference"} for row in run.summary["overhead"]]


def _settings(run: LoadedRun) -> list[tuple[str, str]]:
    record, machine = run.record, run.record.machine
    versions = machine.get("versions") or {}
    memory = machine.get("memory_bytes")
    pinning = record.pinning or {}
    scenario = record.scenario or {}
    workloads = "; ".join(f"{w.get('name')}: {w.get('endpoint')} {w.get('mode', '')}, "
                          f"{w.get('connections')} connections, {w.get('duration')} s after {w.get('warmup')} s "
                          f"warm-up, {w.get('load')} load generator" for w in scenario.get("workloads", []))
    pairs = [
        ("host", f"{machine.get('hostname', '–')} ({machine.get('os', '–')})"),
        ("kernel", machine.get("kernel", "–")),
        ("CPU", f"{machine.get('cpu_model', '–')}, {machine.get('cpus_logical', '–')} logical CPUs"),
        ("memory", fmt(memory / 1024**3, 1, "GiB") if isinstance(memory, (int, float)) else "–"),
        ("/dev/kvm present", str(machine.get("kvm_device", "–"))),
        ("pinning", f"app side on CPUs {pinning.get('app_cpus', '–')}, load generator on "
                    f"{pinning.get('load_cpus', '–')}" if pinning else "not pinned"),
        ("python", f"{machine.get('python', '–')} ({machine.get('python_executable', '–')})"),
        ("versions", ", ".join(f"{name} {value}" for name, value in versions.items() if value) or "–"),
        ("scenario", f"{scenario.get('name', '–')}: {scenario.get('description', '')}"),
        ("workloads", workloads or "–"),
        ("repeats, order", f"{scenario.get('repeat', '–')} per cell, {scenario.get('order', '–')}, start "
                           f"{scenario.get('start', '–')}"),
        ("command line", " ".join(record.command_line) or "–"),
        ("seed", str(record.seed)),
        ("started, finished", f"{record.created_at} → {record.finished_at or 'not finished'}"),
        ("sampler cost", f"{run.summary['sampler_cpu_fraction']:.2%} of one core (median over trials)"
         if isinstance(run.summary.get("sampler_cpu_fraction"), float) else "–"),
    ]
    return pairs


def report_context(run: LoadedRun, charts: dict[str, list[Path]]) -> dict:
    """Everything the template shows, as plain strings and lists (the template only lays it out)."""
    embedded = [{"name": name, "caption": CHARTS[name][1], "src": embed_png(paths[0])}
                for name, paths in charts.items() if paths and paths[0].suffix == ".png"]
    return {
        "run_id": run.record.run_id,
        "status": run.record.status,
        "scenario": run.record.scenario.get("name") or "–",
        "description": run.record.scenario.get("description") or "",
        "confidence": f"{run.summary['confidence']:.0%}",
        "setups": [_label(*key) for key in run.cells],
        "settings": _settings(run),
        "warnings": warnings_of(run),
        "headline": next((chart for chart in embedded if chart["name"] == "headline"), None),
        "charts": [chart for chart in embedded if chart["name"] != "headline"],
        "layers": layer_notes(run),
        "load_rows": _load_rows(run),
        "cost_rows": _cost_rows(run),
        "role_rows": _role_rows(run),
        "overhead_rows": _overhead_rows(run),
        "summary_version": run.summary["summary_version"],
        "format_version": run.record.format_version,
    }


def render_report(run: LoadedRun, charts: dict[str, list[Path]]) -> str:
    """The report's HTML text for a loaded run whose charts are already drawn."""
    return environment().get_template("report.html").render(**report_context(run, charts))


def write_report(run_dir: Path) -> Path:
    """Draw the charts into `<run_dir>/charts/` and write `<run_dir>/report.html`; returns its path."""
    run_dir = Path(run_dir)
    run = LoadedRun.load(run_dir)
    charts = render_loaded(run, run_dir / CHARTS_DIR)
    path = run_dir / REPORT_FILE
    atomic_write(path, render_report(run, charts).encode("utf-8"))
    path.chmod(0o644)  # a report is for sharing; the temp file it came from was private
    return path
