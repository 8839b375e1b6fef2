"""An atlas drawn as a heat map: two cells a character in half blocks (colour), or a character a cell
(NO_COLOR, files), with its axes labelled and a scale; for headless, report and the dashboard alike."""

from __future__ import annotations

import numpy as np
from rich.text import Text

from tuilab.engine.surfaces.atlas import LEFT, METRIC_WORDS, Atlas
from tuilab.kernels.surfaces import DIVERGED
from tuilab.views.run_style import PALETTE, no_color

# viridis at nine stops (dark purple: the lowest value, yellow: the highest), readable under colour-vision
# deficiencies and in greyscale
RAMP = ((68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
        (92, 200, 99), (170, 220, 50), (253, 231, 37))
MONO_RAMP = " .:-=+*#%@"  # lowest to highest
DIVERGED_RGB = (200, 40, 40)
NONE_RGB = (60, 60, 60)  # never within tol, no minimum reached, not run
CURSOR_RGB = (255, 255, 255)
GUTTER = 10  # the y axis's labels
ERROR_FLOOR = -16.0  # log10(f - f*) drawn no lower: float64's rounding, where f* is reached exactly too


def _lerp(t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t)) * (len(RAMP) - 1)
    k = min(int(t), len(RAMP) - 2)
    f = t - k
    return tuple(round(a + (b - a) * f) for a, b in zip(RAMP[k], RAMP[k + 1], strict=True))


def value_text(v: float) -> str:
    return f"{v:.3g}"


class Cells:
    """What each cell shows: a level in [0, 1] (continuous), a category (minimum), or a special state."""

    def __init__(self, atlas: Atlas, run: int, metric: str):
        self.metric = metric
        self.status = atlas.status[run]
        grid = atlas.grid(run, metric).astype(np.float64)
        self.floored = False
        if metric == "final_error":  # below 1e-16 of f* is float64's rounding (and -inf, f* exactly): one colour
            self.floored = bool((grid < ERROR_FLOOR).any())
            grid = np.maximum(grid, ERROR_FLOOR)
        self.categorical = metric == "minimum"
        self.diverged = self.status == DIVERGED
        if self.categorical:
            self.none = grid < 0
        elif metric == "steps_to_tol":
            self.none = grid < 0
        else:
            self.none = ~np.isfinite(grid) & ~self.diverged
        ok = ~self.none & ~self.diverged & np.isfinite(grid)
        self.grid = grid
        self.lo = float(grid[ok].min()) if ok.any() else 0.0
        self.hi = float(grid[ok].max()) if ok.any() else 1.0
        self.not_run = self.status < 0

    def level(self, i: int, j: int) -> float:
        span = self.hi - self.lo
        return 0.5 if span <= 0 else (self.grid[i, j] - self.lo) / span

    def rgb(self, i: int, j: int) -> tuple[int, int, int]:
        if self.not_run[i, j] or self.none[i, j]:
            return NONE_RGB
        if self.diverged[i, j]:
            return DIVERGED_RGB
        if self.categorical:
            return PALETTE[int(self.grid[i, j]) % len(PALETTE)]
        return _lerp(self.level(i, j))

    def char(self, i: int, j: int) -> str:
        if self.not_run[i, j]:
            return " "
        if self.diverged[i, j]:
            return "X"
        if self.none[i, j]:
            return "?" if not self.categorical else "."
        if self.categorical:
            return "ABCDEFGH"[int(self.grid[i, j]) % 8]
        return MONO_RAMP[min(len(MONO_RAMP) - 1, int(self.level(i, j) * len(MONO_RAMP)))]


def _style(rgb) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


def _axis_line(lo: str, mid: str, hi: str, width: int) -> str:
    line = [" "] * max(width, len(lo) + len(mid) + len(hi) + 2)
    line[:len(lo)] = lo
    start = max(len(lo) + 1, (width - len(mid)) // 2)
    line[start:start + len(mid)] = mid
    line[len(line) - len(hi):] = hi
    return "".join(line)


def atlas_text(atlas: Atlas, run: int, metric: str | None = None, mono: bool | None = None,
               cursor: tuple[int, int] | None = None, title: bool = True, key: bool = True) -> Text:
    """Run `run`'s cells as a heat map: the y axis's values bottom (lowest) to top, the x axis's left to right;
    `cursor` (row, column) marks a cell; `key`: the scale beneath (scale_text)."""
    mono = no_color() if mono is None else mono
    metric = metric or atlas.metric
    cells = Cells(atlas, run, metric)
    n1, n0 = atlas.shape
    ax, ay = atlas.axes
    text = Text()
    if title:
        text.append(f"{atlas.labels[run]}: {METRIC_WORDS[metric]}", style="bold")
        text.append(f"   {n0} x {n1} runs of {int(atlas.steps[run]):,} steps\n", style="dim")
    text.append(" " * GUTTER + f"↑ {ay}{' (log)' if atlas.log[1] else ''}\n")
    rows = list(range(n1 - 1, -1, -1))  # the top line: the highest y value
    lines = [rows[k:k + 1] for k in range(len(rows))] if mono else [rows[k:k + 2] for k in range(0, len(rows), 2)]
    labels = {0: value_text(atlas.values_1[-1]), len(lines) - 1: value_text(atlas.values_1[0])}
    if len(lines) > 4:
        labels[len(lines) // 2] = value_text(atlas.values_1[rows[lines[len(lines) // 2][0]]])
    for k, line in enumerate(lines):
        text.append(labels.get(k, "").rjust(GUTTER - 1) + " ")
        for j in range(n0):
            if mono:
                i = line[0]
                ch = "+" if cursor == (i, j) else cells.char(i, j)
                text.append(ch)
                continue
            top = line[0]
            bottom = line[1] if len(line) > 1 else None
            fg = CURSOR_RGB if cursor == (top, j) else cells.rgb(top, j)
            if bottom is None:
                text.append("▀", style=_style(fg))
            else:
                bg = CURSOR_RGB if cursor == (bottom, j) else cells.rgb(bottom, j)
                text.append("▀", style=f"{_style(fg)} on {_style(bg)}")
        text.append("\n")
    lo, hi = value_text(atlas.values_0[0]), value_text(atlas.values_0[-1])
    mid = value_text(atlas.values_0[n0 // 2]) if n0 > 20 else ""
    text.append(" " * GUTTER + _axis_line(lo, mid, hi, n0) + "\n")
    text.append(" " * GUTTER + f"→ {ax}{' (log)' if atlas.log[0] else ''}" + ("\n" if key else ""))
    if key:
        text.append_text(scale_text(atlas, run, metric, mono))
    return text


def scale_text(atlas: Atlas, run: int, metric: str | None = None, mono: bool | None = None,
               indent: int = GUTTER) -> Text:
    """The key: the colour (or character) scale with its ends' values, the categories, the special states."""
    mono = no_color() if mono is None else mono
    cells = Cells(atlas, run, metric or atlas.metric)
    text = Text(" " * indent)
    special = [("X", DIVERGED_RGB, "diverged")]

    def swatch(ch: str, rgb, words: str) -> None:
        if mono:
            text.append(f"{ch} {words}   ")
        else:
            text.append("██", style=_style(rgb))
            text.append(f" {words}   ")

    if cells.categorical:
        for m, (mx, my) in enumerate(atlas.minima):
            swatch("ABCDEFGH"[m % 8], PALETTE[m % len(PALETTE)], f"({mx:.3g}, {my:.3g})")
        special.append((".", NONE_RGB, f"none within {atlas.tol:g}"))
    else:
        text.append(("≤" if cells.floored else "") + value_text(cells.lo) + " ")
        if mono:
            text.append(MONO_RAMP)
        else:
            for k in range(24):
                text.append("█", style=_style(_lerp(k / 23)))
        text.append(" " + value_text(cells.hi) + "   ")
        if cells.metric == "steps_to_tol":
            special.append(("?", NONE_RGB, f"never within {atlas.tol:g}"))
        elif np.any(cells.none):
            special.append(("?", NONE_RGB, "no f* known"))
    for ch, rgb, words in special:
        swatch(ch, rgb, words)
    return text


def atlas_summary(atlas: Atlas, run: int) -> str:
    """One line of counts: how the runs of one optimizer ended over the cells."""
    st = atlas.status[run]
    total = st.size
    parts = [f"{int((st == 0).sum()):,} converged", f"{int((st == LEFT).sum()):,} reached and left",
             f"{int((st == 1).sum()):,} out of steps", f"{int((st == DIVERGED).sum()):,} diverged"]
    if len(atlas.minima) > 1:
        counts = [int((atlas.minimum[run] == m).sum()) for m in range(len(atlas.minima))]
        parts.append("minima " + " ".join(f"{'ABCDEFGH'[m % 8]} {c:,}" for m, c in enumerate(counts)))
    hit = atlas.steps_to_tol[run]
    if (hit >= 0).any():
        parts.append(f"median steps to {atlas.tol:g} {int(np.median(hit[hit >= 0])):,}")
    return f"{atlas.labels[run]}: {total:,} cells: " + ", ".join(parts)


def atlas_report(atlas: Atlas, mono: bool = True) -> str:
    """Every run's heat map and summary, as headless and tuilab report print them (ANSI colours unless mono)."""
    from tuilab.views.run_style import ansi

    parts = [f"atlas of {atlas.landscape}: {len(atlas.labels)} optimizer{'s' * (len(atlas.labels) != 1)} x "
             f"{atlas.shape[1]} x {atlas.shape[0]} cells in {atlas.seconds:.2f} s on {atlas.threads} "
             f"thread{'s' * (atlas.threads != 1)}"]
    for r in range(len(atlas.labels)):
        drawn = atlas_text(atlas, r, mono=mono)
        parts += ["", drawn.plain if mono else ansi(drawn), atlas_summary(atlas, r)]
    return "\n".join(parts)
