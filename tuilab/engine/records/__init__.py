"""A run's folder on disk: writing and reading it (run_records), the events a finished run once sent (replay),
what `tuilab resume` continues (resume), and the results tables computed from it (results, sweep_results)."""
