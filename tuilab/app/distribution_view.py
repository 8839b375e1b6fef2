"""The inside tab's activation strips (issue 29): each hidden layer's activations over the epochs, TensorBoard's
"distributions" in half-block characters (two value bins a cell), darker to brighter by the share of the layer's
activations at that value (views.distributions draws the same without colour, for NO_COLOR and tuilab report)."""

from __future__ import annotations

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from tuilab.views.distributions import dead_line, strip_levels, strip_lines
from tuilab.views.run_style import no_color

DARK, BRIGHT = np.array((18, 18, 26), np.float64), np.array((250, 200, 60), np.float64)
ROWS = 4  # character rows a layer: eight value bins
LABEL = 10  # the value labels' columns


def _rgb(c) -> str:
    return f"rgb({int(c[0])},{int(c[1])},{int(c[2])})"


def render_strips(history, activations, width: int, rows: int = ROWS) -> Text:
    """Every hidden layer's strip from a RunView's act_history, at most width cells of epochs wide."""
    text = Text()
    if not history:
        return text
    n = len(history[-1][1])
    text.append("activations over the epochs (a strip a hidden layer, brighter: more of its activations at that "
                "value)\n", style="dim")
    for l in range(n):
        layer = [(epoch, hists[l]) for epoch, hists in history if l < len(hists) and hists[l] is not None]
        if not layer:
            continue
        act = f" {activations[l]}" if l < len(activations) else ""
        text.append(f"L{l + 1}{act}\n", style="bold")
        if no_color():
            text.append("\n".join(strip_lines(layer, width, rows)) + "\n")
            continue
        found = strip_levels(layer, width, 2 * rows)
        if not isinstance(found, tuple):
            text.append(f"{'':>{LABEL - 2}} │" + dead_line(found) + "\n", style="yellow")
            continue
        first, last, lo, hi, level = found
        colour = DARK + (BRIGHT - DARK) * level[..., None]  # (2 rows, columns, 3), row 0 the lowest
        for r in range(rows):
            top, bottom = 2 * rows - 1 - 2 * r, 2 * rows - 2 - 2 * r
            label = f"{hi:.3g}" if r == 0 else f"{lo:.3g}" if r == rows - 1 else ""
            text.append(f"{label:>{LABEL - 2}} │", style="dim")
            for e in range(colour.shape[1]):
                text.append("▀", Style(color=_rgb(colour[top, e]), bgcolor=_rgb(colour[bottom, e])))
            text.append("\n")
        text.append(" " * LABEL + (f"epoch {first}" if first == last else f"epochs {first}-{last}") + "\n",
                    style="dim")
    return text


class ActivationStrips(Static):
    """The focused run's activation strips, redrawn only when a new histogram arrives or the width changes."""

    DEFAULT_CSS = "ActivationStrips { width: 1fr; height: auto; padding: 0 1; }"

    def show(self, view) -> None:
        history = getattr(view, "act_history", ()) if view is not None else ()
        width = max(10, (self.size.width or 80) - LABEL - 2)
        key = (getattr(view, "key", None), len(history), history[-1][0] if history else None, width, no_color())
        if key == getattr(self, "_key", None):
            return
        self._key = key
        text = render_strips(history, getattr(view, "activations", ()), width)
        lines = text.plain.count("\n")
        self.update(text, layout=lines != getattr(self, "_lines", None))
        self._lines = lines
