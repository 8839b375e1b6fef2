"""Each hidden layer's activations over the epochs, as TensorBoard's "distributions" are, but in characters: a
strip a layer, time left to right, the activation's value bottom to top, each cell as dark as the share of the
layer's activations there (engine.nn.health's histograms, kept in metrics.csv as act_hist_l).

What to look for: a sigmoid layer whose band runs to 0 and 1 is saturated (its f'(z) is near 0 and it passes
little gradient back); a ReLU layer whose band collapses onto 0 has units dying."""

from __future__ import annotations

import math

import numpy as np

from tuilab.engine.nn.health import HISTOGRAM, density_grid, read_histogram

SHADES = " .:-=+*#%@"  # a cell's share of its epoch's activations, none to most
FAINT = 0.002  # a share below this is drawn as none: the spreading of a bin's mass is not a value


def histories(rows, n_hidden: int) -> list[list[tuple[int, tuple]]]:
    """Per hidden layer, (epoch, (min, max, counts)) for each metrics row that has its histogram."""
    out = [[] for _ in range(n_hidden)]
    for r in rows:
        for l in range(n_hidden):
            h = read_histogram(r.get(f"{HISTOGRAM}_{l + 1}"))
            if h is not None:
                out[l].append((int(r.get("epoch", 0)), h))
    return out


def hidden_layers(row: dict) -> int:
    """How many hidden layers a metrics row has histograms for."""
    n = 0
    while f"{HISTOGRAM}_{n + 1}" in row:
        n += 1
    return n


def thinned(history: list, width: int) -> list:
    """At most width entries, evenly spread over the whole run (its first and last kept)."""
    if len(history) <= width:
        return list(history)
    picks = np.unique(np.linspace(0, len(history) - 1, width).round().astype(int))
    return [history[i] for i in picks]


def stretch(n: int, width: int, most: int = 6) -> int:
    """Columns an epoch takes: a short run's few epochs drawn wider, up to most each, to fill width."""
    return max(1, min(most, width // max(n, 1)))


def levels(grid: np.ndarray) -> np.ndarray:
    """0-1 brightness of each cell: its share against twice an even spread's (grid rows), clipped and square-rooted,
    so that a ReLU layer's spike at 0 does not leave the rest of its values unseen; 0 below FAINT."""
    rows = grid.shape[0]
    return np.where(grid < FAINT, 0.0, np.sqrt(np.clip(grid * rows / 2.0, 0.0, 1.0)))


def shade(level: float) -> str:
    if level <= 0:
        return SHADES[0]
    return SHADES[1 + min(len(SHADES) - 2, int(level * (len(SHADES) - 1)))]


def dead_line(value: float) -> str:
    """What a strip says of a layer whose every activation is one number at every epoch shown."""
    return f"every activation {value:.3g} on the probe rows, at every epoch shown: the layer passes nothing on"


def strip_levels(history: list, width: int, bins: int):
    """What both drawings of a layer's strip need: (first epoch, last epoch, lo, hi, levels (bins, columns), row 0
    the lowest, each epoch widened by stretch); a float where every activation was that one number (dead_line);
    None without histograms."""
    kept = thinned(history, width)
    if not kept:
        return None
    same = {h[0] for _, h in kept} | {h[1] for _, h in kept}
    if len(same) == 1:  # min == max at every epoch: nothing to spread over an axis
        return same.pop()
    lo, hi, grid = density_grid([h for _, h in kept], bins)
    return kept[0][0], kept[-1][0], lo, hi, np.repeat(levels(grid), stretch(len(kept), width), axis=1)


def strip_lines(history: list, width: int, rows: int) -> list[str]:
    """A layer's strip in plain characters, value axis labelled: rows lines of at most width + 10 characters."""
    found = strip_levels(history, width, rows)
    if found is None:
        return []
    if not isinstance(found, tuple):
        return [f"{'':>8} │" + dead_line(found)]
    first, last, lo, hi, dark = found
    lines = []
    for r in range(rows - 1, -1, -1):
        label = _value(hi) if r == rows - 1 else _value(lo) if r == 0 else ""
        lines.append(f"{label:>8} │" + "".join(shade(d) for d in dark[r]))
    foot, end = f"epoch {first}", str(last)
    if dark.shape[1] >= len(foot) + len(end) + 1:
        lines.append(" " * 10 + foot + end.rjust(dark.shape[1] - len(foot)))
    else:
        lines.append(" " * 10 + (f"epochs {first}-{last}" if last != first else foot))
    return lines


def _value(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else ""


def distributions_text(rows, activations=(), width: int = 60, strip_rows: int = 5) -> str:
    """Every hidden layer's strip, for tuilab report: empty when the rows have no histograms."""
    n = hidden_layers(rows[-1]) if rows else 0
    layers = histories(rows, n)
    parts = []
    for l, history in enumerate(layers):
        if not history:
            continue
        act = f" ({activations[l]})" if l < len(activations) else ""
        parts.append(f"L{l + 1}{act}")
        parts.extend(strip_lines(history, width, strip_rows))
    if not parts:
        return ""
    return ("activations over the epochs, a strip a hidden layer (darker: more of the layer's activations at that "
            "value)\n" + "\n".join(parts))
