"""Drawing a landscape and its trajectories with plotext, for the terminal and the dashboard.

Each draw function takes a plotext-like object (the plotext module itself, or the
`plt` of a textual-plotext widget) so the same picture appears in both.
"""

from __future__ import annotations

import math

import numpy as np

from tuilab.views.run_style import ansi, drawing_order, legend, line_look, no_color

CONTOUR_COLOR = (70, 70, 70)  # behind the trajectories, whatever the palette
MANY = 6  # with more trajectories than this, each is thinned harder for drawing and its end marked


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
    """At most n of a path's points, evenly spread, the first and the last kept."""
    if len(path) <= n:
        return path
    idx = np.unique(np.linspace(0, len(path) - 1, n).round().astype(int))
    return path[idx]


def _clip(path: np.ndarray, window) -> np.ndarray:
    x0, x1, y0, y1 = window
    return np.column_stack([np.clip(path[:, 0], x0, x1), np.clip(path[:, 1], y0, y1)])


def draw_surface(plt, landscape, results, upto: float = 1.0, title: str | None = None,
                 at_step: float | None = None, ks=None, focus: int | None = None, legend: bool = True,
                 mono: bool | None = None) -> None:
    """Contour of the landscape, each trajectory in its run's colour and marker, start (o), end (■ with
    many runs) and minima (*).

    upto in (0, 1]: the fraction of each trajectory drawn (to animate it growing); at_step: draw each
    trajectory up to that step instead, with an arrow along its last step there (the velocity).
    ks: each result's run index (its colour; default 0, 1, ...); focus: the position of a result drawn
    on top in its colour, the others dimmed; legend: plotext's own legend, inside the plot (the
    dashboard and headless draw theirs outside: run_style.legend).
    """
    ks = list(range(len(results))) if ks is None else list(ks)
    window = plot_window(landscape, results)
    plt.clear_data()
    cx, cy = contour_points(landscape, window)
    if cx:
        plt.scatter(cx, cy, marker="braille", color=CONTOUR_COLOR)
    many = len(results) > MANY
    points = max(60, 2400 // max(len(results), 1)) if many else 400  # thinned harder when there are many
    for i in drawing_order(len(results), focus):
        r, k = results[i], ks[i]
        colour, marker = line_look(k, focus, i, mono)
        n = max(1, int(math.ceil(len(r.path) * upto))) if at_step is None else r.index_at(at_step) + 1
        path = _clip(_thin(r.path[:n], points), window)
        label = (f"{r.label} ({r.status})" if upto >= 1 else r.label) if legend else None
        plt.plot(path[:, 0].tolist(), path[:, 1].tolist(), color=colour, marker=marker, label=label)
        plt.scatter([float(path[0, 0])], [float(path[0, 1])], marker="o", color=colour)
        if many and n > 1:
            plt.scatter([float(path[-1, 0])], [float(path[-1, 1])], marker="■", color=colour)
        if r.average is not None:  # ASGD's running average, beside its iterate
            avg = _clip(_thin(r.average[:n], points), window)
            plt.plot(avg[:, 0].tolist(), avg[:, 1].tolist(), color=colour, marker="dot",
                     label=f"{r.label} average" if legend else None)
    if at_step is not None:
        for i in drawing_order(len(results), focus):
            _arrow(plt, results[i], results[i].index_at(at_step), window, line_look(ks[i], focus, i, mono)[0])
    if landscape.minima:
        mx, my = zip(*landscape.minima, strict=True)
        plt.scatter(list(mx), list(my), marker="*", color="white")
    plt.xlim(window[0], window[1])
    plt.ylim(window[2], window[3])
    plt.title(title or f"{landscape.name}: {landscape.summary}")
    plt.xlabel("x")
    plt.ylabel("y")


ARROWS = "→↗↑↖←↙↓↘"


def arrow_glyph(dx: float, dy: float) -> str:
    """The one of ARROWS nearest the direction (dx, dy)."""
    return ARROWS[int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8]


def _arrow(plt, result, i: int, window, colour: str) -> None:
    """The last step at kept point i, drawn from the point: its direction as it is, its length growing
    with log10 of the step against the window (1e-6 of it or less: 3 % of the window, all of it: 15 %)."""
    inner = result.inner or {}
    if "step_x" not in inner:
        return
    dx, dy = float(inner["step_x"][i]), float(inner["step_y"][i])
    if not (math.isfinite(dx) and math.isfinite(dy)) or (dx == 0 and dy == 0):
        return
    x0, x1, y0, y1 = window
    x, y = (float(v) for v in result.path[i])
    if not (x0 <= x <= x1 and y0 <= y <= y1):  # off the picture (diverged): plotext would draw a line
        return  # to it point by point, billions of them
    w, h = x1 - x0, y1 - y0
    ux, uy = dx / w, dy / h  # in window units, where the picture's angles are
    size = math.hypot(ux, uy)
    length = 0.03 + 0.02 * min(6.0, max(0.0, math.log10(size) + 6.0))
    ux, uy = ux / size * length, uy / size * length
    tip = (min(max(x + ux * w, x0), x1), min(max(y + uy * h, y0), y1))
    plt.plot([x, tip[0]], [y, tip[1]], color=colour, marker="braille")
    glyph = arrow_glyph(ux, uy)
    plt.scatter([tip[0]], [tip[1]], marker=glyph, color=colour)


def draw_step_length(plt, results, upto: float | None = None, ks=None, focus: int | None = None,
                     legend: bool = True, mono: bool | None = None) -> None:
    """log10 of each run's step length |d theta| by step (what the arrows show): a flat line crawls,
    a jagged one bounces from wall to wall. upto: only the steps up to this one."""
    ks = list(range(len(results))) if ks is None else list(ks)
    plt.clear_data()
    for i in drawing_order(len(results), focus):
        r = results[i]
        inner = r.inner or {}
        if "step_x" not in inner:
            continue
        n = len(r.steps) if upto is None else r.index_at(upto) + 1
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(np.hypot(inner["step_x"][:n], inner["step_y"][:n]))
        keep = np.isfinite(y)
        if keep.any():
            colour, marker = line_look(ks[i], focus, i, mono)
            plt.plot(r.steps[:n][keep].tolist(), y[keep].tolist(), color=colour, marker=marker,
                     label=r.label if legend else None)
    plt.title("log10 |step| by step")
    plt.xlabel("step")


def _g(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3g}"


INSIDE_HEADER = ["run", "step", "x", "y", "|step|", "direction", "eff step x", "eff step y", "momentum",
                 "bias corr 1", "bias corr 2", "RAdam rho"]


def inside_rows(results, at_step: float | None = None) -> list[list[str]]:
    """Each optimizer inside at a step (its last kept point at or before it; the end without one):
    the step just taken (length, direction as an arrow), the effective step per coordinate, the
    momentum coefficient applied, Adam's bias corrections and RAdam's rho_t (+: adaptive branch on)."""
    rows = []
    for r in results:
        i = len(r.steps) - 1 if at_step is None else r.index_at(at_step)
        inner = r.inner or {}

        def at(name, inner=inner, i=i):
            return float(inner[name][i]) if name in inner else None

        dx, dy = at("step_x"), at("step_y")
        length = math.hypot(dx, dy) if dx is not None and dy is not None else None
        direction = "-"
        if length and math.isfinite(length):
            direction = arrow_glyph(dx, dy)
        rho = at("radam_rho")
        rho_text = _g(rho) + (("+" if at("radam_adaptive") == 1 else "") if rho is not None else "")
        rows.append([r.label, f"{int(r.steps[i]):,}", f"{r.path[i, 0]:.4g}", f"{r.path[i, 1]:.4g}", _g(length),
                     direction, _g(at("eff_step_x")), _g(at("eff_step_y")), _g(at("momentum_t")),
                     _g(at("bias_correction1")), _g(at("bias_correction2")), rho_text])
    return rows


def draw_error(plt, landscape, results, ks=None, focus: int | None = None, legend: bool = True,
               mono: bool | None = None) -> None:
    """log10(f - f*) against step for each run (f itself where no minimum is known)."""
    ks = list(range(len(results))) if ks is None else list(ks)
    plt.clear_data()
    known = landscape.f_min is not None
    for i in drawing_order(len(results), focus):
        r = results[i]
        y = r.log10_error if known else r.f
        keep = np.isfinite(y)
        if not keep.any():
            continue
        steps = r.steps[keep]
        vals = np.clip(y[keep], -16 if known else -1e6, 1e6)
        colour, marker = line_look(ks[i], focus, i, mono)
        plt.plot(steps.tolist(), vals.tolist(), color=colour, marker=marker, label=r.label if legend else None)
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


    print(f"\n{experiment.title}: {outcome.status}", file=stream)
    print(format_table(*results_rows(outcome.runs)), file=stream)
    if not outcome.results:
        return
    print("\ninside each optimizer at its last point (eff step: its step per unit of gradient or first moment)",
          file=stream)
    print(format_table(INSIDE_HEADER, inside_rows(outcome.results)), file=stream)
    cols, lines = shutil.get_terminal_size((100, 40))
    width = width or max(60, min(cols, 140))
    colorless = not (hasattr(stream, "isatty") and stream.isatty()) or no_color()
    charts = surface_charts(outcome, width, max(20, min(lines - 4, 36)), mono=colorless)
    for _, text in charts:
        print(text, file=stream)


def surface_charts(outcome, width: int = 100, height: int = 30, mono: bool = True,
                   theme: str | None = None) -> list[tuple[str, str]]:
    """(name, text) of the contour with the trajectories, then of the error chart with the legend below it
    (ANSI colours unless mono; plotext's `theme`, default its own, "clear" where mono)."""
    import plotext

    # the legend once, below both charts: inside, 18 runs' legend covered half of the contour
    key = legend([(k, f"{r.label} ({r.status})") for k, r in enumerate(outcome.results)], width, mono=mono)
    charts = []
    for name, draw, rows in (("contour", draw_surface, height), ("error", draw_error, 16)):
        plotext.clear_figure()
        if mono or theme:
            plotext.theme(theme or "clear")
        draw(plotext, outcome.landscape, outcome.results, legend=False, mono=mono)
        plotext.plotsize(width, rows)
        text = plotext.build()
        charts.append((name, plotext.uncolorize(text) if mono else text))
    name, text = charts[-1]
    charts[-1] = (name, text + "\n" + (key.plain if mono else ansi(key)))
    return charts
