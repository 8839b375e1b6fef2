"""Command line entry point (placeholder until the engine and dashboard land)."""

from __future__ import annotations

import argparse
import sys

from tuilab import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuilab",
        description="A terminal laboratory for neural-network optimisation.",
    )
    parser.add_argument("--version", action="version", version=f"tuilab {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    from tuilab.engine.optim import OPTIMIZER_NAMES

    print(f"tuilab {__version__}")
    print("The Numba core is here: an MLP on one flat parameter vector and these optimizers:")
    print("  " + ", ".join(OPTIMIZER_NAMES))
    print("Coming next: presets and `tuilab --preset NAME headless`, the surface lab, and the")
    print("Textual dashboard.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
