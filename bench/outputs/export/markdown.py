"""Markdown: a table ready to paste into a README or a pull request, with units and 95% intervals.

A run: one row per cell (layer, workload, each figure as `median [low–high]` with its unit in the
header) and its verdicts against the baseline's cell of the same workload; start-up, which the
model pools over every start of a layer, gets a row of its own. A comparison: one row per cell
and figure, each run's median and each later run's ratio to the first. Caveats follow as a list.
"""

from __future__ import annotations

from bench.model import STARTUP_WORKLOAD, Run
from bench.outputs import rows
from bench.figures import HEADLINE_METRICS, metric
from bench.vocabulary import MISSING, VERDICT_MEANING, percent, printable


def md(text: object) -> str:
    """The one escaping path of this format, for every text that is not ours: no pipe, newline or HTML
    from a user's names breaks a table, and no control character (an image's ESC or BEL) reaches
    whoever prints the export: it is shown escaped (\\x1b), as the terminal shows it."""
    cleaned = printable(" ".join(str(text).split()))
    return (cleaned.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "'"))


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if index in right else ":---" for index in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _verdicts(verdicts: list[rows.VerdictRow], setup: str, variant: str, workload: str, app: str) -> str:
    found = [f"{row.metric_label}: **{row.state}**, {row.verdict}" if row.state in ("worse", "better")
             else f"{row.metric_label}: **{row.state}** {row.ratio}" for row in verdicts
             if (row.setup, row.variant, row.workload, row.app) == (setup, variant, workload, app)
             and row.metric_key in HEADLINE_METRICS]
    return "; ".join(found)


def run_text(run: Run) -> str:
    """The run as one markdown table (one row per cell), then its caveats."""
    shown = tuple(key for key in HEADLINE_METRICS if any(cell.values(key) for cell in run.cells))
    baseline = run.baseline
    header = ["layer", "workload", "n", *(metric(key).title for key in shown),
              f"vs {md(baseline)}" if baseline else "vs baseline", "notes"]
    verdicts = rows.verdict_rows(run)
    lines = []
    for row in rows.headline_rows(run, shown):
        versus = "baseline" if row.baseline else _verdicts(verdicts, row.setup, row.variant, row.workload, row.app)
        lines.append([md(row.label), md(row.workload), str(row.repeats), *row.figures, md(versus or MISSING),
                      md(row.flags)])
    pooled = list(dict.fromkeys((row.label, row.setup, row.variant, row.app) for row in verdicts
                                if row.workload == STARTUP_WORKLOAD))
    for name, setup, variant, app in pooled:
        lines.append([md(name), f"{STARTUP_WORKLOAD} (every start)", MISSING, *(MISSING for _ in shown),
                      md(_verdicts(verdicts, setup, variant, STARTUP_WORKLOAD, app)), ""])
    info = run.info
    text = [f"Run `{md(info.run_id)}` (scenario {md(info.scenario_name)}, {md(info.status)}): "
            f"medians over the n trials, [low–high] = 95% interval"
            + (f"; verdicts are ratios to {md(baseline)}'s cell of the same workload, paired over rounds "
               f"({md(VERDICT_MEANING.format(effect=percent(run.min_effect)))})." if baseline else "."), "",
            *_table(header, lines, right={2, *range(3, 3 + len(shown))})]
    return "\n".join(text + _fixed_lines(run) + _doubt_lines(run.doubts())) + "\n"


def _fixed_lines(run: Run) -> list[str]:
    """What one more instance costs against what the engine costs once (layers whose engine has daemons)."""
    costs = [row for row in rows.layer_cost_rows(run) if row.has_fixed]
    if not costs:
        return []
    lines = [[md(row.label), row.pss, row.fixed_pss, row.fixed_cpu, md(row.fixed_role_keys)] for row in costs]
    return ["", "One more instance against the engine itself (the engine's daemons are paid once per host, however "
            "many instances run):", "",
            *_table(["layer", "one more instance: PSS (MiB)", "the engine, once: PSS (MiB)", "engine CPU (cores)",
                     "engine processes"], lines, right={1, 2, 3})]


def _doubt_lines(doubts) -> list[str]:
    """The run's doubts, one line per kind, the most serious first."""
    return ([""] + [f"- {'Note' if d.severity == 'note' else 'Warning'}: {md(d.text)}" for d in doubts]) if doubts else []


def _caveat_lines(caveats) -> list[str]:
    shown = [caveat for caveat in caveats if caveat.kind not in ("noisy", "busy", "errors", "single_repeat")]
    return ([""] + [f"- {md(caveat.text)}" for caveat in shown]) if shown else []


def comparison_text(comparison) -> str:
    """A comparison (bench.compare.Comparison) as one markdown table, then its warnings."""
    runs = comparison.runs
    header = ["layer", "workload", "figure", *(f"run {index + 1}" for index in range(len(runs))),
              *(f"run {index + 1} ÷ run 1" for index in range(1, len(runs)))]
    lines = []
    for row in rows.compare_rows(comparison):
        medians = [entry.median for entry in row.runs]
        ratios = [f"{entry.ratio} {entry.state}" if entry.ratio else MISSING for entry in row.runs[1:]]
        lines.append([md(row.label), md(row.workload), md(row.metric), *medians, *(md(r) for r in ratios)])
    named = ", ".join(f"run {index + 1} = `{md(name)}`" for index, name in enumerate(comparison.titles))
    text = [f"Compared runs: {named}. Medians over repeats; ratio to run 1 with its 95% interval [low–high].", "",
            *_table(header, lines, right=set(range(3, len(header))))]
    return "\n".join(text + _caveat_lines(comparison.caveats)) + "\n"
