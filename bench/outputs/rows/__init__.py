"""The rows every output shows, built once from the model: a label, the layer's colour, each figure
formatted (its metric's digits and unit), a verdict's state and words, an interval.

The terminal, the report, the markdown export, compare's page and the fleet's report render these
rows and format nothing themselves, so one figure reads the same everywhere. A figure is formatted
by its metric in the registry (bench.figures): throughput and CPU per request without decimals,
memory with one, start-up with three.

    cells.py    per cell: load, start-up, cost, roles, density, the headline figures
    layers.py   per layer: its cost split, its verdicts against the baseline, each app's, its words
    runs.py     across runs: a comparison, a fleet side by side
"""

from bench.outputs.rows.cells import (CostRow, DensityRow, HeadlineRow, LoadRow, RoleRow, StartupRow, cost_rows,
                                      density_rows, figure, headline_figure, headline_rows, load_rows, role_rows,
                                      startup_rows)
from bench.outputs.rows.layers import (AppRow, LayerCostRow, VerdictRow, app_rows, layer_cost_rows, role_points,
                                       verdict_rows)
from bench.outputs.rows.runs import CompareEntry, CompareRow, FleetRow, compare_rows, fleet_rows

__all__ = ["AppRow", "CompareEntry", "CompareRow", "CostRow", "DensityRow", "FleetRow", "HeadlineRow", "LayerCostRow",
           "LoadRow", "RoleRow", "StartupRow", "VerdictRow", "app_rows", "compare_rows", "cost_rows", "density_rows",
           "figure", "fleet_rows", "headline_figure", "headline_rows", "layer_cost_rows", "load_rows", "role_points",
           "role_rows", "startup_rows", "verdict_rows"]
