"""The surface lab's landscapes by name and their own parameters: the one table that the preset schema
(engine.config.schema), the landscapes (make_landscape, check_surface_table) and the rule across a preset's
runs read."""

from __future__ import annotations

SURFACES = ("rosenbrock", "beale", "himmelblau", "rastrigin", "booth", "saddle", "ill-conditioned")
# each landscape's parameters with their defaults
SURFACE_PARAMS = {"rosenbrock": {"a": 1.0, "b": 100.0}, "rastrigin": {"A": 10.0},
                  "saddle": {"wall": 0.0}, "ill-conditioned": {"condition": 100.0}}
# every parameter any landscape takes, with the least a preset may give (None: any number); a bound that
# depends on the landscape (rosenbrock's b > 0) is make_landscape's
PARAM_FLOORS = {"a": None, "b": None, "A": 0.0, "wall": 0.0, "condition": 1.0}
PER_RUN = ("start", "steps", "max_points")  # what the runs of one surface preset may set each their own


def landscape_key(table: dict) -> tuple:
    """What makes a resolved [surface] table's landscape: its name and parameters (not where a run starts)."""
    return tuple(sorted((k, repr(v)) for k, v in table.items() if k not in PER_RUN))
