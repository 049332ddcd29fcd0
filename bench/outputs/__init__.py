"""Everything a reader sees, drawn from the model (bench.model) only: the terminal tables, the live
view and progress lines of a run, the HTML report and its charts, the exports (markdown, csv,
json), compare's page, the journey screen, and a fleet's view and report.

Outputs import nothing from bench.results, bench.runner, bench.setups, bench.load or bench.metrics:
what they show is what the model gives (cells, overhead, costs, `Run.info`, the raw latencies and
samples through `Run.latencies_ms` and `Run.process_samples`)."""
