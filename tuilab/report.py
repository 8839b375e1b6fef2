"""`tuilab report RUNDIR ...`: records read back and printed with no screen (tables, a chart, notes)."""

from __future__ import annotations

import math
import re

from tuilab.engine.records import Reopened, read_records
from tuilab.engine.results import cell
from tuilab.headless import results_table


def _surface_table(runs: list[dict]) -> str:
    header = ["run", "optimizer", "lr", "status", "x", "y", "f", "steps"]
    rows = [[str(r.get("label", "")), str(r.get("optimizer", "")), cell(r.get("lr"), "g"),
             str(r.get("status", "")), cell(r.get("x"), ".6g"), cell(r.get("y"), ".6g"), cell(r.get("f"), ".3g"),
             str(r.get("steps_done", ""))] for r in runs]
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in [header, ["-" * w for w in widths], *rows])


def loss_chart(rec: Reopened, width: int = 100, height: int = 18) -> str:
    """Training loss per epoch of every run, as plotext draws it (no colours: it may go to a file)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    drawn = False
    for i, r in enumerate(rec.runs):
        pts = [(m["epoch"], m["train_loss"]) for m in rec.metrics
               if m.get("run") == i and isinstance(m.get("train_loss"), float) and math.isfinite(m["train_loss"])]
        if len(pts) >= 2:
            plt.plot([p[0] for p in pts], [p[1] for p in pts], label=str(r.get("label", i))[:20], marker="braille")
            drawn = True
    if not drawn:
        return ""
    plt.title("training loss per epoch")
    plt.xlabel("epoch")
    return re.sub(r"\x1b\[[0-9;]*m", "", plt.build())  # plotext ends lines with colour resets


def report(folders, stream, chart: bool = True) -> int:
    """Print each folder's records; returns the exit code (a folder with no records is an error)."""
    for k, folder in enumerate(folders):
        rec = read_records(folder)
        if k:
            print(file=stream)
        data = rec.summary.get("dataset") or "?"
        print(f"{rec.title} on {data}: {rec.status}   ({rec.folder})", file=stream)
        if rec.lab == "surface":
            print(_surface_table(rec.runs), file=stream)
        else:
            print(results_table(rec.runs) if rec.runs else "(no runs recorded)", file=stream)
            drawn = loss_chart(rec) if chart else ""
            if drawn:
                print(drawn, file=stream)
        for note in rec.notes:
            print(f"note: {note}", file=stream)
    return 0
