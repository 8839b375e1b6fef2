"""A fair race shown: what each run was tuned to, the leaderboard by epochs and seconds to the target, and the
mean curves over seeds with their spread; for headless, tuilab report and the dashboard alike."""

from __future__ import annotations

import math

from tuilab.views.run_style import ansi, legend, line_look

BARS_UP_TO = 8  # more runs' error bars hide the curves: their spread is in the leaderboard


def _figure(v, higher: bool) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    return f"{100 * v:.2f}%" if higher else f"{v:.4g}"


def tuned_text(result: dict) -> str:
    """Each run's tuned learning rate beside its preset one."""
    lines = ["each run's learning rate, tuned over its own grid (the lowest validation loss of those that trained "
             "to the end):"]
    width = max((len(p["label"]) for p in result.get("tuned", [])), default=3)
    for p in result.get("tuned", []):
        grid = p.get("grid") or []
        edge = "  (the grid's edge: the best may lie beyond it)" if p.get("at_grid_edge") else ""
        span = f"grid {min(grid):.3g}..{max(grid):.3g}" if grid else ""
        lines.append(f"  {p['label'].ljust(width)}  preset lr {p['preset_lr']:<8g} tuned lr {p['tuned_lr']:<8g} "
                     f"{span}{edge}" + (f"  {p['note']}" if p.get("note") else ""))
    return "\n".join(lines)


def leaderboard_text(result: dict) -> str:
    target = result.get("target")
    board = result.get("leaderboard")
    if not target or board is None:
        return "(the race did not get to the leaderboard)"
    higher = target["higher_is_better"]
    metric = target["metric"].replace("_", " ")
    head = ["#", "run", "tuned lr", "epochs to target", "seconds to target",
            f"final {metric} (mean ± sd over seeds)", "min..max"]
    rows = []
    for k, b in enumerate(board, 1):
        ep = b["epochs_to_target"]
        rows.append([str(k), b["label"], "-" if b.get("lr") is None else f"{b['lr']:g}",
                     "not reached" if ep is None else str(ep),
                     "-" if b["seconds_to_target"] is None else f"{b['seconds_to_target']:.3g}",
                     f"{_figure(b['final_mean'], higher)} ± {_figure(b['final_sd'], higher)}",
                     f"{_figure(b['final_min'], higher)}..{_figure(b['final_max'], higher)}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    sign = ">=" if higher else "<="
    title = (f"leaderboard: epochs (and seconds) until the mean over seeds reaches {metric} {sign} "
             f"{_figure(target['value'], higher)} ({target['chosen']} target)")
    return "\n".join([title, line(head), line(["-" * w for w in widths]), *map(line, rows)])


def race_chart(result: dict, width: int = 100, height: int = 20, mono: bool = True) -> str:
    """Each run's mean curve over seeds with ±1 sd bars, the target as a line (ANSI colours unless mono)."""
    import plotext as plt

    curves = result.get("curves") or {}
    target = result.get("target") or {}
    higher = target.get("higher_is_better", False)
    scale = 100.0 if higher else 1.0
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    drawn = []
    for k, (label, c) in enumerate(curves.items()):
        pts = [(e, m * scale, s * scale) for e, m, s in zip(c["epochs"], c["mean"], c["sd"], strict=True)
               if math.isfinite(m)]
        if len(pts) < 1:
            continue
        colour, marker = line_look(k, None, k, mono)
        xs, ys, sds = (list(v) for v in zip(*pts, strict=True))
        plt.plot(xs, ys, color=colour, marker=marker)
        if len(curves) <= BARS_UP_TO and any(s > 0 for s in sds):
            plt.error(xs, ys, yerr=sds, color=colour)
        drawn.append((k, label))
    if not drawn:
        return ""
    value = target.get("value")
    if isinstance(value, (int, float)) and math.isfinite(value):
        plt.hline(value * scale)
    metric = target.get("metric", "").replace("_", " ")
    bars = ", bars ±1 sd" if len(curves) <= BARS_UP_TO else ""
    plt.title(f"{metric}{', %' if higher else ''}: the mean over seeds{bars}, the line the target"[:90])
    plt.xlabel("epoch")
    key = legend(drawn, width, mono=mono)
    return (plt.uncolorize(plt.build()) + "\n" + key.plain) if mono else (plt.build() + "\n" + ansi(key))


def race_text(result: dict, chart: bool = True, mono: bool = True) -> str:
    """Everything headless and tuilab report print for a fair race."""
    budget = result.get("budget", {})
    race = result.get("race", {})
    parts = [f"fair race: {result.get('status', '?')}",
             f"tuning: {race.get('grid')} learning rates a run over {race.get('decades'):g} decades, successive "
             f"halving within each run's grid (keep {race.get('keep', 0):.2f} a rung): "
             f"{budget.get('tune_run_epochs_at_most', 0):,} run-epochs at most "
             f"({budget.get('tune_run_epochs_without_halving', 0):,} without halving); the race: "
             f"{budget.get('race_run_epochs', 0):,} run-epochs over {race.get('seeds')} seed(s)",
             "", tuned_text(result), "", leaderboard_text(result)]
    if chart:
        drawn = race_chart(result, mono=mono)
        if drawn:
            parts += ["", drawn]
    return "\n".join(parts)
