"""Data sets: the IDX image sets found on disk or fetched (idx, download), the bundled digits, the seeded
synthetic sets, and one entry point that loads any of them split and normalised (sets)."""
