"""A run's caveats: everything a reader must know before trusting a figure (bench.model.Run.caveats)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.results import FIRST_APP, RunRecord
from bench.vocabulary import Caveat, cell_label, label

if TYPE_CHECKING:
    from bench.model.run import Run


def run_caveats(run: "Run", record: RunRecord) -> list[Caveat]:
    """Everything a reader must know before trusting a figure, one per cell and kind (the tables'
    flags, the JSON); `doubts()` groups them for the lines a reader reads first."""
    found = []
    if record.split:  # loopback-only relaxed, on purpose: the reader must know where the load came from
        split = record.split
        found.append(Caveat("split", str(split.load_host or ""),
                            f"Split run: the load came from {split.load_host} "
                            f"({split.load_address}); the app listened on "
                            f"{split.listen_address} only, not on loopback."))
    status = record.effective_status()
    if status != "complete":
        found.append(Caveat("incomplete", "", f"This run is {status}: it did not finish every trial it planned "
                            f"({len(record.trials)} recorded of {len(record.order) or 'an unknown number'} "
                            f"started). Figures cover only the trials that ran."))
    for trial in record.trials:
        if trial.status == "failed":
            subject = cell_label(trial.setup, trial.variant, trial.workload, trial.app if run.multi_app else None)
            found.append(Caveat("failed", subject, f"Failed trial {subject} / repeat {trial.repeat + 1}: "
                                f"{trial.error or 'no reason recorded'}"))
    for skipped in record.skipped:
        what = skipped.variant or skipped.setup or "a setup"
        if skipped.app and (run.multi_app or skipped.app != FIRST_APP):
            what = f"{skipped.app} in {what}"
        found.append(Caveat("skipped", str(what), f"Skipped {what}: {skipped.reason or 'no reason recorded'}"))
    found += [caveat for cell in run.cells for caveat in cell.caveats() if caveat.kind != "failed"]
    found += [*run.unreadable_files.values(), *run.unreadable_met.values()]
    shared: dict[str, list[str]] = {}  # one caveat text -> the layers that carry it (vm and container-in-vm: TCG)
    for layer in run.layers:
        for text in layer.caveats:
            shared.setdefault(text, []).append(label(*run.layer_key_of(layer)))
    for text, labels in shared.items():
        found.append(Caveat("layer", ", ".join(labels), text if len(labels) == 1 else f"{', '.join(labels)}: {text}"))
    if run.cells and run.baseline is None:
        found.append(Caveat("no_baseline", "", "No baseline setup in this run: no overhead ratios can be computed."))
    return found
