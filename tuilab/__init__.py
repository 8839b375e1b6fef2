"""tuilab: a terminal laboratory for neural-network optimisation."""

__version__ = "0.1.0"
