"""Drawing a landscape and its trajectories with plotext, for the terminal and the dashboard.

Each draw function takes a plotext-like object (the plotext module itself, or the
`plt` of a textual-plotext widget) so the same picture appears in both.
"""

from __future__ import annotations

import math

import numpy as np

COLORS = ["red+", "cyan+", "orange+", "green+", "magenta+", "blue+", "white", "red", "cyan", "orange",
          "green", "magenta", "blue", "gray+"]
CONTOUR_COLOR = "gray"


def color(k: int) -> str:
    return COLORS[k % len(COLORS)]


def plot_window(landscape, results=()) -> tuple[float, float, float, float]:
    """The landscape's window, grown to hold every start point."""
    x0, x1, y0, y1 = landscape.window
    for r in results:
        sx, sy = r.path[0]
        x0, x1 = min(x0, sx - 0.5), max(x1, sx + 0.5)
        y0, y1 = min(y0, sy - 0.5), max(y1, sy + 0.5)
    return x0, x1, y0, y1


def contour_points(landscape, window, nx: int = 120, ny: int = 60, levels: int = 9):
    """Cells where f crosses one of `levels` log-spaced levels: (xs, ys) to scatter as contour lines."""
    xs, ys, f = landscape.grid(nx + 1, ny + 1, window)
    base = (landscape.f_min if landscape.f_min is not None else float(np.nanmin(f)))
    g = np.log10(np.maximum(f - base, 0) + 1e-3)  # log scale: valleys get as many lines as peaks
    finite = g[np.isfinite(g)]
    lo, hi = np.percentile(finite, 1), np.percentile(finite, 97)
    out_x, out_y = [], []
    corners = np.stack([g[:-1, :-1], g[1:, :-1], g[:-1, 1:], g[1:, 1:]])
    cmin, cmax = corners.min(axis=0), corners.max(axis=0)
    cx = (xs[:-1] + xs[1:]) / 2
    cy = (ys[:-1] + ys[1:]) / 2
    for level in np.linspace(lo, hi, levels):
        i, j = np.nonzero((cmin <= level) & (level < cmax))
        out_x.extend(cx[j])
        out_y.extend(cy[i])
    return out_x, out_y


def _thin(path: np.ndarray, n: int = 400) -> np.ndarray:
    if len(path) <= n:
        return path
    idx = np.unique(np.linspace(0, len(path) - 1, n).round().astype(int))
    return path[idx]


def _clip(path: np.ndarray, window) -> np.ndarray:
    x0, x1, y0, y1 = window
    return np.column_stack([np.clip(path[:, 0], x0, x1), np.clip(path[:, 1], y0, y1)])


def draw_surface(plt, landscape, results, upto: float = 1.0, title: str | None = None) -> None:
    """Contour of the landscape, each trajectory in its colour, start (o) and minima (*).

    upto in (0, 1]: the fraction of each trajectory drawn (to animate it growing).
    """
    window = plot_window(landscape, results)
    plt.clear_data()
    cx, cy = contour_points(landscape, window)
    if cx:
        plt.scatter(cx, cy, marker="braille", color=CONTOUR_COLOR)
    for k, r in enumerate(results):
        n = max(1, int(math.ceil(len(r.path) * upto)))
        path = _clip(_thin(r.path[:n]), window)
        plt.plot(path[:, 0].tolist(), path[:, 1].tolist(), color=color(k), marker="braille",
                 label=f"{r.label} ({r.status})" if upto >= 1 else r.label)
        plt.scatter([float(path[0, 0])], [float(path[0, 1])], marker="o", color=color(k))
        if r.average is not None:  # ASGD's running average, beside its iterate
            avg = _clip(_thin(r.average[:n]), window)
            plt.plot(avg[:, 0].tolist(), avg[:, 1].tolist(), color=color(k), marker="dot",
                     label=f"{r.label} average")
    if landscape.minima:
        mx, my = zip(*landscape.minima, strict=True)
        plt.scatter(list(mx), list(my), marker="*", color="white")
    plt.xlim(window[0], window[1])
    plt.ylim(window[2], window[3])
    plt.title(title or f"{landscape.name}: {landscape.summary}")
    plt.xlabel("x")
    plt.ylabel("y")


def draw_error(plt, landscape, results) -> None:
    """log10(f - f*) against step for each run (f itself where no minimum is known)."""
    plt.clear_data()
    known = landscape.f_min is not None
    for k, r in enumerate(results):
        y = r.log10_error if known else r.f
        keep = np.isfinite(y)
        if not keep.any():
            continue
        steps = r.steps[keep]
        vals = np.clip(y[keep], -16 if known else -1e6, 1e6)
        plt.plot(steps.tolist(), vals.tolist(), color=color(k), marker="braille", label=r.label)
    plt.title("log10(f - f*) by step" if known else "f by step")
    plt.xlabel("step")


def results_rows(runs) -> tuple[list[str], list[list[str]]]:
    """The results table: optimizer, final point, distance, log10 error, steps to 1e-3, status."""
    header = ["run", "optimizer", "lr", "final x", "final y", "f", "distance", "log10 err", "steps to 1e-3",
              "status"]
    rows = []
    for r in runs:
        if "x" not in r:
            rows.append([r["label"], r["optimizer"], f"{r['lr']:g}", *["-"] * 6, r["status"]])
            continue
        dist = r["distance"]
        err = r["log10_error"]
        hit = r["steps_to_1e-3"]
        rows.append([r["label"], r["optimizer"], f"{r['lr']:g}", f"{r['x']:.6g}", f"{r['y']:.6g}",
                     f"{r['f']:.4g}", "-" if not math.isfinite(dist) else f"{dist:.3g}",
                     "-" if not math.isfinite(err) else f"{err:.2f}", "-" if hit is None else f"{hit:,}",
                     r["status"] + (f" at step {r['steps_done']:,}" if r["status"] == "diverged" else "")])
        if "average" in r:  # ASGD: where its running average ended, under its iterate
            a = r["average"]
            err = a["log10_error"]
            rows.append(["  average", "", "", f"{a['x']:.6g}", f"{a['y']:.6g}", f"{a['f']:.4g}",
                         "-" if not math.isfinite(a["distance"]) else f"{a['distance']:.3g}",
                         "-" if not math.isfinite(err) else f"{err:.2f}", "-", ""])
    return header, rows


def format_table(header, rows) -> str:
    widths = [max(len(h), *(len(row[k]) for row in rows)) if rows else len(h) for k, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def print_surface_results(experiment, outcome, stream, width: int | None = None) -> None:
    """The table, then the contour with trajectories and the error chart, drawn with plotext."""
    import shutil

    import plotext

    print(f"\n{experiment.title}: {outcome.status}", file=stream)
    print(format_table(*results_rows(outcome.runs)), file=stream)
    if not outcome.results:
        return
    cols, lines = shutil.get_terminal_size((100, 40))
    width = width or max(60, min(cols, 140))
    colorless = not (hasattr(stream, "isatty") and stream.isatty())
    for draw, height in ((draw_surface, max(20, min(lines - 4, 36))), (draw_error, 16)):
        plotext.clear_figure()
        if colorless:
            plotext.theme("clear")
        draw(plotext, outcome.landscape, outcome.results)
        plotext.plotsize(width, height)
        text = plotext.build()
        print(plotext.uncolorize(text) if colorless else text, file=stream)
