"""Figures as SVG files: a chart or table as the terminal shows it (its colours kept), text in the SVG, in fonts
every browser and slide program has."""

from __future__ import annotations

import io
import re
from pathlib import Path

# Rich's SVG asks for Fira Code from a CDN: offline, or in a slide program, that is a fallback font of another
# width. These are monospace fonts that come with Linux, macOS and Windows, in that order.
PORTABLE_MONO = '"DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", "Courier New", monospace'
PORTABLE_SANS = "Arial, Helvetica, sans-serif"

_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}\s*")
_MATRIX_FONT = re.compile(r"font-family:\s*Fira Code,\s*monospace;")
_TITLE_FONT = re.compile(r"font-family:\s*arial;")


def portable(svg: str) -> str:
    """Rich's or Textual's SVG with no web font: the monospace fonts every system has instead."""
    svg = _FONT_FACE.sub("", svg)
    svg = _MATRIX_FONT.sub(f"font-family: {PORTABLE_MONO};", svg)
    return _TITLE_FONT.sub(f"font-family: {PORTABLE_SANS};", svg)


def svg_of(text: str, title: str) -> str:
    """The text (ANSI colours allowed, as plotext builds a chart) drawn as a terminal would, as SVG."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.text import Text

    body = Text.from_ansi(text.rstrip("\n"))
    width = max(20, *(cell_len(line) for line in body.plain.split("\n")))
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False)
    console.print(body, no_wrap=True, overflow="ignore", crop=False)
    return portable(console.export_svg(title=title))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "figure"


class SvgFigures:
    """Each figure added becomes <folder>/NN-<name>.svg, numbered in the order they were added."""

    def __init__(self, folder: str | Path):
        from tuilab.errors import TuilabError

        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TuilabError(f"cannot write figures to {self.folder}: {exc.strerror or exc}; "
                              "give --svg a folder you can write to") from exc
        self.written: list[Path] = []

    def add(self, name: str, text: str, title: str) -> Path:
        path = self.folder / f"{len(self.written) + 1:02d}-{slug(name)}.svg"
        path.write_text(svg_of(text, title), encoding="utf-8")
        self.written.append(path)
        return path
