"""Decision maps on screen (issue 29): a run's prediction over its input plane in half-block characters, two
pixels a cell (the upper one the foreground of ▀, the lower its background), a hue per class and its lightness by
the network's confidence (the top probability); training points as dots and test points as rings over it, a
misclassified test point as a white ✗. Small multiples of many runs, best first, beside the one in focus."""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from tuilab.engine.nn.decision import cell_char
from tuilab.views.run_style import no_color

PALETTE = ((66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 220, 220),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))
BACKGROUND = np.array((18, 18, 26), np.float64)
LOW, HIGH = np.array((40, 60, 160), np.float64), np.array((250, 200, 60), np.float64)  # a regression's ends


def _colours(p: np.ndarray) -> np.ndarray:
    """(rows, cols, 3) RGB of each pixel: its class's hue, lighter the surer (guessing: the background)."""
    c = p.shape[2]
    if c == 1:  # one output under squared error: its value, lowest to highest
        v = p[..., 0].astype(np.float64)
        lo, hi = float(v.min()), float(v.max())
        t = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
        return LOW + (HIGH - LOW) * t[..., None]
    k = p.argmax(axis=2)
    conf = p.max(axis=2).astype(np.float64)
    t = np.clip((conf - 1.0 / c) / (1.0 - 1.0 / c), 0.0, 1.0)
    hue = np.array(PALETTE, np.float64)[k % len(PALETTE)]
    return BACKGROUND + (hue - BACKGROUND) * (0.2 + 0.8 * t)[..., None]


def _rgb(c) -> str:
    return f"rgb({int(c[0])},{int(c[1])},{int(c[2])})"


def render_map(e, cols: int, rows: int) -> Text:
    """The map of a DecisionMapped event in cols x rows character cells (the top row: the largest y)."""
    cols, rows = max(cols, 4), max(rows, 2)
    xi = np.linspace(0, len(e.x) - 1, cols).round().astype(int)
    yi = np.linspace(len(e.y) - 1, 0, 2 * rows).round().astype(int)
    p = e.p[yi][:, xi]  # (2 rows, cols, classes), top first
    marks = _marks(e, cols, rows)
    text = Text()
    if no_color():  # a character per class as tuilab report draws it, the points' marks over them
        lo, hi = float(e.p.min()), float(e.p.max())
        for r in range(rows):
            text.append("".join(marks[(r, c)][0] if (r, c) in marks else cell_char(p[2 * r, c], lo, hi)
                                for c in range(cols)) + "\n")
        return text
    rgb = _colours(p)
    for r in range(rows):
        for c in range(cols):
            top, bottom = rgb[2 * r, c], rgb[2 * r + 1, c]
            mark = marks.get((r, c))
            if mark is not None:
                char, colour = mark
                text.append(char, Style(color=colour, bgcolor=_rgb((top + bottom) / 2), bold=True))
            else:
                text.append("▀", Style(color=_rgb(top), bgcolor=_rgb(bottom)))
        text.append("\n")
    return text


def _marks(e, cols: int, rows: int) -> dict:
    """(row, col) -> (character, colour) for the points drawn over the map: training dots, test rings, and a
    misclassified test point as ✗ (drawn last, so it wins its cell)."""
    x0, x1, y0, y1 = float(e.x[0]), float(e.x[-1]), float(e.y[0]), float(e.y[-1])
    out = {}

    def at(xy):
        c = np.clip(np.round((xy[:, 0] - x0) / (x1 - x0) * (cols - 1)), 0, cols - 1).astype(int)
        r = np.clip(np.round((y1 - xy[:, 1]) / (y1 - y0) * (2 * rows - 1)), 0, 2 * rows - 1).astype(int) // 2
        return r, c

    def colour(label):  # its class's hue, darker: faint on its own class's ground, plain on the other's
        return "white" if label is None else _rgb(np.array(PALETTE[int(label) % len(PALETTE)]) * 0.45)

    if e.train_xy is not None and len(e.train_xy):
        r, c = at(np.asarray(e.train_xy))
        for k in range(len(r)):
            label = None if e.train_labels is None else e.train_labels[k]
            out[(r[k], c[k])] = ("·", colour(label))
    wrong = []
    if e.test_xy is not None and len(e.test_xy):
        r, c = at(np.asarray(e.test_xy))
        for k in range(len(r)):
            label = None if e.test_labels is None else e.test_labels[k]
            if e.test_predicted is not None and label is not None and e.test_predicted[k] != label:
                wrong.append((r[k], c[k]))
            else:
                out[(r[k], c[k])] = ("∘", colour(label))
    for cell in wrong:
        out[cell] = ("✗", "white")
    return out


class DecisionMapView(Static):
    """The focused (or best) run's decision map, large, and the other runs' beside it, small, best first."""

    DEFAULT_CSS = "DecisionMapView { width: 1fr; height: auto; padding: 0 1; }"

    def show(self, maps: list[tuple[str, object, float]]) -> None:
        """maps: (label, its last DecisionMapped, its validation accuracy) for each run drawn, the large one
        first; an empty list: the words that say when maps appear."""
        if not maps:
            self.update(Text("the decision map appears after the first epoch: what each run predicts over its "
                             "two inputs (two-input data sets only)", style="dim"))
            return
        # the pane this sits in, not this widget's own (auto) height: the map fills what the tab has
        box = self.parent.size if self.parent is not None and self.parent.size.height else self.size
        width = max(20, (box.width or 100) - 2)
        height = max(6, (box.height or 24))
        label, e, acc = maps[0]
        small = maps[1:]
        # square pixels: a cell is two pixels high and about one wide, so the data's aspect sets cols per row
        aspect = float(e.x[-1] - e.x[0]) / float(e.y[-1] - e.y[0]) if e.y[-1] > e.y[0] else 1.0
        big_rows = max(4, height - 3)
        big_cols = int(round(min(width if not small else width * 2 // 3, 2 * big_rows * aspect)))
        big_rows = max(4, min(big_rows, int(round(big_cols / (2 * aspect)))))
        text = Text(f"{label}: what it predicts over its inputs at epoch {e.epoch}"
                    + (f", validation accuracy {acc:.1%}" if math.isfinite(acc) else ""), style="bold")
        text.append("\n")
        big = render_map(e, big_cols, big_rows).split("\n")
        side = []
        if small:  # the others, small, best first: as many as fit beside the large one
            cols = max(12, min(24, width - big_cols - 3))
            rows = max(3, cols // 3)
            for name, other, other_acc in small:
                if len(side) + rows + 1 > big_rows:
                    break
                head = f"{name[:cols - 7]} {other_acc:.0%}" if math.isfinite(other_acc) else name[:cols]
                side.append(Text(head[:cols], style="dim"))
                side += render_map(other, cols, rows).split("\n")[:rows]
        for k, line in enumerate(big[:big_rows]):
            text.append_text(line)
            if k < len(side):
                text.append("   ")
                text.append_text(side[k])
            text.append("\n")
        classes = e.p.shape[2]
        key = Text("· training  ∘ test  ✗ a test point it gets wrong;  " if e.test_xy is not None
                   else "(records: the last map, without the points)  ", style="dim")
        if classes > 1:
            for k in range(classes):
                key.append("██", Style(color=_rgb(PALETTE[k % len(PALETTE)])))
                key.append(f" class {k}  ", style="dim")
            key.append("lighter: surer", style="dim")
        else:
            key.append("output value: blue (lowest) to yellow (highest)", style="dim")
        text.append_text(key)
        self.update(text)
