"""How a run looks wherever it appears (its row, sparkline, chart line, table row, trajectory, legend):
a colour from a palette that stays distinct under the common colour-vision deficiencies, and a
marker, so that runs stay apart with NO_COLOR set, or past the palette's eight colours."""

from __future__ import annotations

import os
from dataclasses import dataclass

# Okabe and Ito's palette (Color Universal Design, 2008), distinct for protanopia, deuteranopia and
# tritanopia; its black is a light grey here, for the dark screens a terminal has.
PALETTE = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
    (220, 220, 220),  # light grey (the palette's black)
)
DIM = (88, 88, 88)  # the runs behind a focused one
# one character a run, drawn along its line where colour cannot tell runs apart (NO_COLOR, or a run past
# the palette): plotext draws a line of a character marker as that character at each point
MARKS = "•+xo*#=~^%@&$?!:<>ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def no_color() -> bool:
    """NO_COLOR set and not empty (no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


@dataclass(frozen=True)
class RunStyle:
    rgb: tuple[int, int, int]
    marker: str  # plotext's marker for the run's lines: "braille", or one character
    tag: str  # what stands for the run in a legend or a row: a short bar in colour, or its character

    @property
    def rich(self) -> str:
        """The colour as a Rich style."""
        r, g, b = self.rgb
        return f"#{r:02x}{g:02x}{b:02x}"


def run_style(k: int, mono: bool | None = None) -> RunStyle:
    """Run k's look: the palette's colour k mod 8; braille lines for the first eight, a character of
    its own after them (and for every run with NO_COLOR)."""
    mono = no_color() if mono is None else mono
    rgb = PALETTE[k % len(PALETTE)]
    if mono:
        mark = MARKS[k % len(MARKS)]
        return RunStyle(rgb, mark, mark)
    if k >= len(PALETTE):  # the palette's second round on: the lightest characters first
        mark = MARKS[(k - len(PALETTE)) % len(MARKS)]
        return RunStyle(rgb, mark, mark)
    return RunStyle(rgb, "braille", "━")


def plot_colour(k: int, dimmed: bool = False):
    """The colour plotext draws run k in (a dim grey behind a focused run)."""
    return DIM if dimmed else run_style(k).rgb


def drawing_order(n: int, focus: int | None = None) -> list[int]:
    """The order to draw n runs in: the focused one last, on top of the others."""
    order = [i for i in range(n) if i != focus]
    return order + ([focus] if focus is not None and 0 <= focus < n else [])


def line_look(k: int, focus: int | None, i: int, mono: bool | None = None) -> tuple:
    """(colour, marker) of run k (drawn as the i-th) for plotext: dimmed behind a focused run, and thin
    there (braille) where colour tells them apart anyway."""
    mono = no_color() if mono is None else mono
    dimmed = focus is not None and i != focus
    look = run_style(k, mono)
    return plot_colour(k, dimmed=dimmed), ("braille" if dimmed and not mono else look.marker)


def legend(entries, width: int = 80, mono: bool | None = None, max_lines: int | None = None):
    """A legend to print beside or below a chart (never inside it), as a Rich Text that wraps at width:
    entries are (k, label) or (k, label, dimmed), each shown as its tag in its colour and its label.
    With max_lines, what does not fit is counted at the end ("+11 more") rather than cut off unseen."""
    from rich.text import Text

    mono = no_color() if mono is None else mono
    lines: list[list] = [[]]
    used = 0
    for entry in entries:
        k, label, dimmed = (*entry, False) if len(entry) == 2 else entry
        size = len(run_style(k, mono).tag) + 1 + len(label) + 2
        if lines[-1] and used + size > width:
            lines.append([])
            used = 0
        lines[-1].append((k, label, dimmed, size))
        used += size
    hidden = 0
    cap = None if max_lines is None else max(max_lines, 1)
    if cap is not None and len(lines) > cap:
        hidden = sum(len(line) for line in lines[cap:])
        lines = lines[:cap]
        last = lines[-1]
        while len(last) > 1 and sum(e[3] for e in last) + len(f"+{hidden} more") > width:
            last.pop()
            hidden += 1
    text = Text()
    for n, line in enumerate(lines):
        if n:
            text.append("\n")
        for k, label, dimmed, _ in line:
            look = run_style(k, mono)
            text.append(look.tag, style=None if mono else ("#585858" if dimmed else look.rich))
            text.append(f" {label}  ", style="dim" if dimmed else None)
    if hidden:
        text.append(f"+{hidden} more", style="dim italic")
    return text


def ansi(text) -> str:
    """A Rich Text as a terminal shows it (colours as escape codes), for headless output to a terminal."""
    from rich.console import Console

    console = Console(force_terminal=True, color_system="truecolor", width=10_000)
    with console.capture() as out:
        console.print(text, end="")
    return out.get()
