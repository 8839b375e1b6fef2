"""A sweep drawn as text: the runs grouped by axis values, the best figure against each numeric
axis (plotext; log x where the values span two decades or more), and a heat table for two axes.

Headless prints it at the end, `tuilab report` from records, the dashboard's sweep view as runs
finish; `draw_axis_chart` takes a plotext-like object (plotext itself, or a widget's `plt`).
"""

from __future__ import annotations

import math
from collections import Counter

from tuilab.engine.config.sweep import axis_names, value_text
from tuilab.engine.records.sweep_results import SweepResults

MAX_LINES = 8  # lines in one chart; more are said, not drawn


def _figure(results: SweepResults, v: float) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:.2%}" if results.higher_is_better else f"{v:.4f}"


def _mean_spread(results: SweepResults, cell) -> str:
    text = _figure(results, cell.mean)
    if math.isfinite(cell.spread):
        text += f" ± {cell.spread * 100:.2f}" if results.higher_is_better else f" ± {cell.spread:.4f}"
    return text


def _statuses(statuses) -> str:
    counts = Counter(statuses)
    return ", ".join(f"{n} {s}" if len(statuses) > 1 else s for s, n in counts.items())


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if k in right else c.ljust(w)
                         for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def grouped_table(results: SweepResults) -> str:
    """One line per combination of the axes (seeds averaged): mean ± spread, how many, statuses."""
    names = axis_names(k for k, _ in results.axes)
    best = results.best()
    over = f" over {', '.join(results.seeds)}" if results.seeds else ""
    header = [names[k] for k, _ in results.axes] + ["runs", f"{results.metric}{over}", "status"]
    rows = []
    for c in results.cells:
        mark = " *" if c is best else ""
        rows.append([value_text(v) for v in c.values] + [str(len(c.figures)), _mean_spread(results, c) + mark,
                                                          _statuses(c.statuses)])
    n = len(results.axes)
    return "\n".join(_table(header, rows, {n, n + 1}))


def heat_table(results: SweepResults) -> str | None:
    """For exactly two axes: the first down, the second across, each cell the mean figure."""
    if len(results.axes) != 2:
        return None
    (ka, va), (kb, vb) = results.axes
    names = axis_names([ka, kb])
    at = {tuple(map(value_text, c.values)): c for c in results.cells}
    best = results.best()
    header = [f"{names[ka]} \\ {names[kb]}"] + [value_text(v) for v in vb]
    rows = []
    for a in va:
        row = [value_text(a)]
        for b in vb:
            c = at.get((value_text(a), value_text(b)))
            row.append("" if c is None else _figure(results, c.mean) + (" *" if c is best else ""))
        rows.append(row)
    return "\n".join(_table(header, rows, set(range(1, len(vb) + 1))))


def log_scaled(values) -> bool:
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and max(pos) / min(pos) >= 100


def draw_axis_chart(plt, results: SweepResults, axis: int, entries: list | None = None,
                    mono: bool | None = None) -> int:
    """The figure against results.axes[axis]: a line per value of the other axes, each in a look of its
    own (run_style), error bars of one spread over seeds. The legend goes outside: `entries` gets a
    (look index, label) per line. Returns how many lines were left out (beyond MAX_LINES)."""
    from tuilab.views.run_style import line_look

    key, values = results.axes[axis]
    names = axis_names(k for k, _ in results.axes)
    log = log_scaled(values)
    scale = 100.0 if results.higher_is_better else 1.0  # an accuracy in per cent, as every table prints it
    groups: dict[tuple, list] = {}
    for c in results.cells:
        rest = tuple(value_text(v) for k, v in enumerate(c.values) if k != axis)
        groups.setdefault(rest, []).append(c)
    others = [names[k] for k, _ in (a for j, a in enumerate(results.axes) if j != axis)]
    for k, (rest, cells) in enumerate(list(groups.items())[:MAX_LINES]):
        pts = [(c.values[axis], c) for c in cells if math.isfinite(c.mean)]
        if not pts:
            continue
        xs = [math.log10(v) if log else v for v, _ in pts]
        ys = [c.mean * scale for _, c in pts]
        label = " ".join(f"{o}={r}" for o, r in zip(others, rest, strict=True)) or results.metric
        colour, marker = line_look(k, None, k, mono)
        plt.plot(xs, ys, color=colour, marker=marker)
        if entries is not None:
            entries.append((k, label[:40]))
        spreads = [c.spread * scale if math.isfinite(c.spread) else 0.0 for _, c in pts]
        if any(spreads):
            plt.error(xs, ys, yerr=spreads)
    if log:
        ticks = sorted({math.log10(v) for v in values})
        plt.xticks(ticks, [value_text(v) for v in sorted(values)])
    over = f", mean ± sd over {', '.join(results.seeds)}" if results.seeds else ""
    plt.title(f"{results.metric}{', %' if scale != 1 else ''} against {key}"[:70])
    plt.xlabel(f"{key}{' (log scale)' if log else ''}{over}")
    return max(0, len(groups) - MAX_LINES)


def sweep_text(results: SweepResults, chart: bool = True, width: int = 100, height: int = 20) -> str:
    """Everything headless and `tuilab report` print for a sweep."""
    parts = ["", f"sweep: {results.metric} by " + (", ".join(k for k, _ in results.axes) or "run")
             + (f", averaged over {', '.join(results.seeds)}" if results.seeds else "")
             + (" (no validation set: the training loss)" if results.metric == "train loss" else ""),
             grouped_table(results)]
    heat = heat_table(results)
    if heat:
        parts += ["", heat]
    best = results.best()
    if best is not None:
        names = axis_names(k for k, _ in results.axes)
        where = " ".join(f"{names[k]}={value_text(v)}" for (k, _), v in zip(results.axes, best.values, strict=True))
        parts.append(f"best: {where or 'the one run'} ({_mean_spread(results, best)})")
    if chart:
        for drawn in sweep_charts(results, width, height, mono=True):  # no colours: it may go to a file
            parts += ["", drawn]
    return "\n".join(parts)


def sweep_charts(results: SweepResults, width: int = 100, height: int = 20, mono: bool = True) -> list[str]:
    """A chart a numeric axis, its legend below it (ANSI colours unless mono)."""
    import plotext as plt

    from tuilab.views.run_style import ansi, legend

    charts = []
    for axis in results.numeric_axes():
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")
        key: list = []
        left_out = draw_axis_chart(plt, results, axis, key, mono=mono)
        built = plt.build()
        below = legend(key, width, mono=mono)
        text = (plt.uncolorize(built) + "\n" + below.plain) if mono else (built + "\n" + ansi(below))
        charts.append(text + (f"\n({left_out} more lines not drawn)" if left_out else ""))
    return charts
