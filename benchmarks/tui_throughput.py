"""Training throughput inside the dashboard against headless, for one preset.

    python benchmarks/tui_throughput.py [--preset shallow-sigmoid] [--dataset fashion-mnist] [--epochs 3]

Runs the preset headless (a subprocess), then inside the Textual app (run_test: the
real screens, timers and redraws, on a headless driver), and prints samples/s of each
from their summary.json, best of --repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def headless(args, out: Path) -> float:
    cmd = [sys.executable, "-m", "tuilab", "--preset", args.preset, "--epochs", str(args.epochs), "--out", str(out)]
    if args.dataset:
        cmd += ["--dataset", args.dataset]
    subprocess.run([*cmd, "headless"], check=True, capture_output=True)
    return json.loads((out / "summary.json").read_text())["runs"][0]["samples_per_second"]


async def in_tui(args, root: Path) -> float:
    from tuilab.app.app import make_app

    over = [("train.epochs", args.epochs)] + ([("data.name", args.dataset)] if args.dataset else [])
    app = make_app(args.preset, over, out_root=root)
    async with app.run_test(size=(100, 32)) as pilot:
        while not (app.lives and not app.lives[0].running and app.lives[0].outcome is not None):
            await asyncio.sleep(0.2)
        await pilot.pause(0.2)
    summary = json.loads(next(root.glob("*/summary.json")).read_text())
    return summary["runs"][0]["samples_per_second"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="shallow-sigmoid")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        h = max(headless(a, tmp / f"h{k}") for k in range(a.repeat))
        t = max(asyncio.run(in_tui(a, tmp / f"t{k}")) for k in range(a.repeat))
    print(f"{a.preset} on {a.dataset}, {a.epochs} epochs (best of {a.repeat})")
    print(f"{'headless':12s}{h:>14,.0f} samples/s")
    print(f"{'dashboard':12s}{t:>14,.0f} samples/s   {t / h:.0%} of headless")


if __name__ == "__main__":
    main()
