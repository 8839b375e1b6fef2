"""The surface lab: the landscapes by name with their parameters (params, which the preset schema reads too), 2-D
landscapes and optimizer descents over them (landscapes), and running a surface preset
with its records (runner)."""
