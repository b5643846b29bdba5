"""Plain I/O with the outside world, shared by the pipeline, the CLI and the benchmarks:
the platforms' API connectors and syncs, export folders as downloaded, and the raw landing
and normalized store on disk. No Dagster here; `resources/` wraps these for the assets."""
