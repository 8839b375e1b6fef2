"""Which runs the charts draw (no Textual): all but those turned off, or the best N by the metric
shown; one run may be focused (drawn on top in its colour, the others dimmed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BEST = (None, 3, 5, 10)  # b cycles through these: all runs, then the best 3, 5, 10


@dataclass
class Selection:
    off: set[str] = field(default_factory=set)  # turned off by the user (v, or a click on its row)
    focus: str | None = None
    best: int | None = None  # show only the best N (None: all that are not off)
    cursor: int = 0  # the run list's highlighted row

    def toggle(self, key: str) -> bool:
        """Turn a run off or back on; True when it is now shown."""
        if key in self.off:
            self.off.discard(key)
            return True
        self.off.add(key)
        if self.focus == key:
            self.focus = None
        return False

    def toggle_focus(self, key: str) -> bool:
        """Focus a run (it is shown, whatever else), or unfocus it; True when it is now focused."""
        if self.focus == key:
            self.focus = None
            return False
        self.focus = key
        self.off.discard(key)
        return True

    def next_best(self, runs: int) -> int | None:
        """The next "show best N" step that shows fewer runs than there are (then all again)."""
        steps = [n for n in BEST if n is None or n < runs]
        at = steps.index(self.best) if self.best in steps else 0
        self.best = steps[(at + 1) % len(steps)]
        return self.best

    def shown(self, keys: list[str], scores: dict[str, float] | None = None) -> list[str]:
        """The keys the charts draw, in their order: not off, within the best N by score (lower is
        better; a run with no score yet is last), and the focused run always."""
        on = [k for k in keys if k not in self.off]
        if self.best is not None and scores is not None:
            def rank(k):
                s = scores.get(k, math.nan)
                return (not math.isfinite(s), s if math.isfinite(s) else 0.0)

            top = set(sorted(on, key=rank)[:self.best])
            on = [k for k in on if k in top]
        if self.focus is not None and self.focus in keys and self.focus not in on:
            on.append(self.focus)
        return on

    def move(self, delta: int, n: int) -> int:
        self.cursor = min(max(self.cursor + delta, 0), max(n - 1, 0))
        return self.cursor

    def describe(self, shown: int, total: int, metric: str) -> str:
        """One line for the run list's header: what the charts show, and the keys that change it."""
        parts = []
        if self.best is not None:
            parts.append(f"best {min(self.best, shown)} of {total} by {metric}")
        elif shown < total:
            parts.append(f"{shown} of {total} shown")
        else:
            parts.append(f"all {total} shown")
        if self.focus is not None:
            parts.append("one focused")
        return ", ".join(parts)
