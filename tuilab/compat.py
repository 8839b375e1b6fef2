"""The versions of the libraries tuilab draws with that it has been checked against, said in one line at start
when the environment holds another (a plain `pip install plotext` now brings 6.x, a new library under the old
name: no module-level plot, scatter, build or clear_figure)."""

from __future__ import annotations

from importlib import metadata

from tuilab.errors import TuilabError

PLOTEXT = ((5, 2), (6, 0))  # from 5.2 up to, not including, 6.0: as pyproject.toml says


def _major_minor(version: str) -> tuple[int, int]:
    parts = (version.split(".") + ["0", "0"])[:2]
    return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)


def check_plotext(version: str | None = None) -> None:
    """One clear line when the installed plotext is outside the range tuilab draws with."""
    if version is None:
        try:
            version = metadata.version("plotext")
        except metadata.PackageNotFoundError:
            raise TuilabError("plotext is not installed: pip install 'plotext>=5.2,<6'") from None
    lo, hi = PLOTEXT
    if not lo <= _major_minor(version) < hi:
        raise TuilabError(f"tuilab draws its charts with plotext 5.2 to 5.x; this environment has plotext {version}"
                          f"{', a new library under the old name' if _major_minor(version) >= hi else ''}: "
                          "pip install 'plotext>=5.2,<6'")
