"""The data model every output reads: Trial (stored) -> Cell -> Run.

A `Cell` is one setup variant under one workload: its trials and, as methods, its statistics.
A `Run` is a stored run folder: its layers (setup variants, as the run described them), its
cells in display order, the overhead of each cell against the baseline, and its caveats. The
summary, the terminal, the report, the charts and compare all read these; none regroups trials.
"""

from bench.model.about import RunInfo
from bench.model.cell import BUSY_MACHINE_CORES, Cell, LayerKey
from bench.model.cell_figures import CpuSplit, InsideFigures, Memory, PerInstanceMemory
from bench.model.figures import median_of, sub_seed
from bench.model.fixed import FixedCost, LayerCost
from bench.model.overhead import STARTUP_WORKLOAD, Overhead
from bench.model.role_figures import FixedFigures, RoleFigures
from bench.model.run import Run
from bench.records import Machine, Pinning, Split
from bench.results import FIRST_APP, FORMAT_VERSION, LayerRecord

__all__ = ["BUSY_MACHINE_CORES", "FIRST_APP", "FORMAT_VERSION", "STARTUP_WORKLOAD", "Cell", "CpuSplit", "FixedCost",
           "FixedFigures", "InsideFigures", "LayerCost", "LayerKey", "LayerRecord", "Machine", "Memory",
           "Overhead", "PerInstanceMemory", "Pinning", "RoleFigures", "Run", "RunInfo", "Split", "median_of", "sub_seed"]
