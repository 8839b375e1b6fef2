"""The surface lab: 2-D landscapes and optimizer descents over them (landscapes), and running a surface preset
with its records (runner)."""
