"""The plotext tuilab draws with (issue 31): the installed one lies in the range pyproject.toml declares, the calls
tuilab makes exist in it, and another one is said in one line at start."""

import re
import tomllib
from pathlib import Path

import plotext
import pytest

from tuilab import compat
from tuilab.cli import main
from tuilab.errors import TuilabError

# every module-level plotext call tuilab makes (views/, report.py, landscape.py) and textual-plotext's own import
CALLED = ("clear_figure", "clear_data", "plotsize", "build", "uncolorize", "theme", "plot", "scatter", "hline",
          "xlim", "ylim", "xlabel", "ylabel", "title", "yticks", "xticks")


def test_the_declared_range_is_the_checked_one_and_holds_the_installed_plotext():
    doc = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = next(d for d in doc["project"]["dependencies"] if d.startswith("plotext"))
    lo, hi = re.fullmatch(r"plotext>=(\d+\.\d+),<(\d+)", declared).groups()
    assert compat.PLOTEXT == (tuple(map(int, lo.split("."))), (int(hi), 0))
    compat.check_plotext()  # the installed one
    for name in CALLED:
        assert callable(getattr(plotext, name)), name
    from textual_plotext.plotext._figure import _figure_class  # noqa: F401  (5.x's internals, which it wraps)


@pytest.mark.parametrize("version,ok", [("5.2.8", True), ("5.3.2", True), ("6.1.0", False), ("6.0", False),
                                        ("5.1.0", False), ("4.2", False)])
def test_another_plotext_is_one_clear_line(version, ok):
    if ok:
        compat.check_plotext(version)
        return
    with pytest.raises(TuilabError, match=r"plotext 5\.2 to 5\.x; this environment has plotext .*pip install"):
        compat.check_plotext(version)


def test_the_command_line_says_it_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(compat.metadata, "version", lambda name: "6.1.0")
    assert main(["report", "nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plotext 6.1.0, a new library under the old name" in err[0]
    assert main(["list"]) == 0  # listing the presets draws nothing
