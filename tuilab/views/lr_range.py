"""A learning-rate range test shown: the smoothed loss against the learning rate (log x) and the
table of suggestions, for headless, `tuilab report` and the dashboard alike."""

from __future__ import annotations

import math

from tuilab.engine.records.results import cell
from tuilab.views.run_style import drawing_order, line_look
from tuilab.views.run_style import legend as legend_of


def _lr(value) -> str:
    return cell(value, ".3g")  # the results table's: "-" for none


def draw_range_chart(plt, curves, suggested=(), ks=None, focus: int | None = None, legend: bool = True,
                     mono: bool | None = None) -> None:
    """curves: (label, lrs, smoothed losses) per run, drawn against log10 lr in each run's colour;
    suggested: each run's suggested lr (None: none), marked on its curve. ks, focus, legend: as
    views.surface.draw_surface's."""
    ks = list(range(len(curves))) if ks is None else list(ks)
    drawn = False
    lows, highs = [], []
    for i in drawing_order(len(curves), focus):
        label, lrs, smoothed = curves[i]
        pts = [(math.log10(x), y) for x, y in zip(lrs, smoothed, strict=True) if x > 0 and math.isfinite(y)]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        colour, marker = line_look(ks[i], focus, i, mono)
        plt.plot(xs, ys, color=colour, marker=marker, label=label[:18] if legend else None)
        lows.append(min(xs))
        highs.append(max(xs))
        drawn = True
        s = suggested[i] if i < len(suggested) else None
        if s is not None and s > 0:
            near = min(pts, key=lambda p: abs(p[0] - math.log10(s)))
            plt.scatter([near[0]], [near[1]], color=colour, marker="o")
    if drawn:
        lo, hi = math.floor(min(lows)), math.ceil(max(highs))
        ticks = list(range(lo, hi + 1))
        plt.xticks(ticks, [f"1e{t}" for t in ticks])
        plt.title("smoothed training loss by learning rate (o: suggested)")
    else:
        plt.title("the range test's curve appears after its first steps")
    plt.xlabel("learning rate (log scale)")


def range_table(runs: list[dict]) -> str:
    """A row per run: its suggestion, a tenth of the lowest point's lr, where it blew up, steps."""
    header = ["run", "optimizer", "suggested lr", "min-loss lr / 10", "blow-up lr", "steps", "status"]
    rows = []
    for r in runs:
        rr = r.get("lr_range") or {}
        low = rr.get("min_loss_lr")
        rows.append([r.get("label", ""), r.get("optimizer", ""), _lr(rr.get("suggested_lr")),
                     _lr(low / 10 if low else None), _lr(rr.get("blowup_lr")) if rr.get("blowup_lr") else "none",
                     str(rr.get("steps_done", r.get("steps_done", 0))), r.get("status", "")])
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if 2 <= k <= 5 else c.ljust(w)
                         for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def apply_hint(preset: str, runs: list[dict]) -> list[str]:
    """How to train with the suggestion: the command, ready to copy, for one run; for several, each
    run's figure (--set optimizer.lr sets every run's)."""
    found = [(r.get("label"), (r.get("lr_range") or {}).get("suggested_lr")) for r in runs]
    found = [(label, s) for label, s in found if s is not None]
    if len(runs) == 1 and found:
        return [f"tuilab --preset {preset} --no-lr-range --set optimizer.lr={found[0][1]:.3g} headless"]
    return [f"  {label}: optimizer.lr = {s:.3g}" for label, s in found] + (
        ["(--set optimizer.lr sets every run's; the dashboard's l key starts each run at its own)"] if found else [])


def range_chart(runs: list[dict], curves, width: int = 100, height: int = 20, mono: bool = True) -> str:
    """The range test's chart with its legend below (ANSI colours unless mono)."""
    import plotext as plt

    from tuilab.views.run_style import ansi

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    draw_range_chart(plt, curves, [(r.get("lr_range") or {}).get("suggested_lr") for r in runs], legend=False,
                     mono=mono)
    key = legend_of([(k, label) for k, (label, _, _) in enumerate(curves)], width, mono=mono)
    return plt.uncolorize(plt.build()) + "\n" + key.plain if mono else plt.build() + "\n" + ansi(key)


def range_text(preset: str, runs: list[dict], curves, chart: bool = True, width: int = 100,
               height: int = 20) -> str:
    """Everything headless and `tuilab report` print for a range test."""
    parts = ["", range_table(runs)]
    if chart:  # no colours (it may go to a file): each run its own mark, the legend below the chart
        parts += ["", range_chart(runs, curves, width, height, mono=True)]
    hints = apply_hint(preset, runs)
    if hints:
        parts += ["", "train with the suggested learning rate:", *hints]
    return "\n".join(parts)
