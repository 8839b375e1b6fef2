"""A sweep: settings varied over lists of values ([sweep] in a preset, --sweep on the command line).

    [sweep]
    "optimizer.lr" = [1e-4, 1e-3, 1e-2]     # an axis: a dotted setting and its values
    "train.seed" = [0, 1, 2]
    mode = "grid"                          # every combination; "zip": the i-th value of each axis
    prune = "halving"                      # successive halving on validation loss (optional)
    rung_epochs = 1                        # the first rung; rung k is at rung_epochs * (1/keep)**k
    keep = 0.33                            # the fraction of the runs still training kept at a rung
    bracket = "optimizer.name"             # halving within each value of this setting (optional)

Each [[runs]] entry is run at every combination (config.experiment); the combinations are only
expanded here, each is then checked like a preset of its own.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from tuilab.errors import TuilabError

OPTIONS = ("mode", "prune", "rung_epochs", "keep", "bracket")
MODES = ("grid", "zip")
PRUNERS = ("none", "halving")
MAX_RUNS = 10_000  # beyond this a typo (a list where a number was meant) is likelier than a plan


@dataclass(frozen=True)
class Sweep:
    """Axes ((dotted key, values), ...) and how they combine and are pruned."""

    axes: tuple[tuple[str, tuple], ...] = ()
    mode: str = "grid"
    prune: str = "none"
    rung_epochs: int = 1
    keep: float = 1 / 3
    bracket: str = ""  # a setting: halving ranks the runs with the same value of it among themselves only

    def combinations(self) -> list[dict]:
        """[{key: value, ...}] in order: the first axis varies slowest."""
        if not self.axes:
            return [{}]
        keys = [k for k, _ in self.axes]
        values = [v for _, v in self.axes]
        rows = zip(*values, strict=True) if self.mode == "zip" else itertools.product(*values)
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which halving compares the runs: rung_epochs * eta**k below `epochs`."""
        if self.prune != "halving":
            return []
        eta = 1 / self.keep
        out, k = [], 0
        while True:
            at = int(round(self.rung_epochs * eta ** k))
            if at >= epochs:
                return out
            if not out or at > out[-1]:
                out.append(at)
            k += 1

    def options(self) -> dict:
        """The [sweep] options without the axes (what config.toml keeps: its runs are spelt out)."""
        out: dict = {"mode": self.mode}
        if self.prune != "none":
            out.update(prune=self.prune, rung_epochs=self.rung_epochs, keep=self.keep)
        if self.bracket:
            out["bracket"] = self.bracket
        return out

    def describe(self) -> dict:
        """summary.json's `sweep`: {axes: {key: values}, mode, ...}."""
        return {"axes": {k: list(v) for k, v in self.axes}, **self.options()}


def _check_axis(where: str, key, values) -> tuple[str, tuple]:
    if not isinstance(key, str) or len(key.split(".")) != 2:
        raise TuilabError(f"{where}: sweep axis {key!r}: name a setting as table.key, "
                          "e.g. \"optimizer.lr\" = [1e-3, 1e-2]")
    if not isinstance(values, list) or not values:
        raise TuilabError(f"{where}: sweep axis {key!r}: give its values as a non-empty list, "
                          "e.g. [1e-3, 1e-2, 1e-1]")
    seen = []
    for v in values:
        if v in seen:
            raise TuilabError(f"{where}: sweep axis {key!r} lists {v!r} twice")
        seen.append(v)
    return key, tuple(values)


def parse_sweep_table(table, where: str) -> Sweep:
    """A preset's [sweep] table -> Sweep (every mistake one line naming the key)."""
    if not isinstance(table, dict):
        raise TuilabError(f"{where}: sweep must be a table ([sweep])")
    axes = []
    for key, value in table.items():
        if key in OPTIONS:
            continue
        axes.append(_check_axis(f"{where}: [sweep]", key, value))
    mode = table.get("mode", "grid")
    if mode not in MODES:
        raise TuilabError(f"{where}: [sweep] mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    prune = table.get("prune", "none")
    if prune not in PRUNERS:
        raise TuilabError(f"{where}: [sweep] prune must be one of {', '.join(map(repr, PRUNERS))}, got {prune!r}")
    rung = table.get("rung_epochs", 1)
    if isinstance(rung, bool) or not isinstance(rung, int) or rung < 1:
        raise TuilabError(f"{where}: [sweep] rung_epochs must be a whole number >= 1, got {rung!r}")
    keep = table.get("keep", 1 / 3)
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep < 1:
        raise TuilabError(f"{where}: [sweep] keep must be a fraction between 0 and 1 (e.g. 0.33), got {keep!r}")
    bracket = table.get("bracket", "")
    if not isinstance(bracket, str) or (bracket and len(bracket.split(".")) != 2):
        raise TuilabError(f"{where}: [sweep] bracket must name a setting as table.key (e.g. \"optimizer.name\"), "
                          f"got {bracket!r}")
    return Sweep(tuple(axes), mode, prune, rung, float(keep), bracket)


def parse_sweep_option(text: str) -> tuple[str, tuple]:
    """--sweep 'optimizer.lr=[1e-3, 1e-2]' -> ('optimizer.lr', (0.001, 0.01))."""
    from tuilab.engine.config.overrides import split_setting

    key, values = split_setting(text, "--sweep", "key=[values]", "'optimizer.lr=[1e-3, 1e-2]'")
    if not isinstance(values, list):
        raise TuilabError(f"--sweep {key}: the values must be a TOML list, e.g. --sweep '{key}=[1e-3, 1e-2]' "
                          "(strings in quotes: 'optimizer.name=[\"sgd\", \"adam\"]')")
    return _check_axis("--sweep", key, values)


def with_axes(sweep: Sweep | None, axes) -> Sweep | None:
    """The preset's sweep with the command line's axes: one of the same key replaces the preset's."""
    if sweep is None and not axes:
        return None
    sweep = sweep or Sweep()
    merged = dict(sweep.axes)
    for key, values in axes:
        merged[key] = values
    return replace(sweep, axes=tuple(merged.items()))


def check_combinations(sweep: Sweep, where: str) -> list[dict]:
    if sweep.mode == "zip":
        lengths = {k: len(v) for k, v in sweep.axes}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise TuilabError(f"{where}: a zip sweep needs lists of one length ({shown}); "
                              "or use mode = \"grid\"")
    n = math.prod(len(v) for _, v in sweep.axes) if sweep.mode == "grid" else len(sweep.axes[0][1]) if sweep.axes else 1
    if n > MAX_RUNS:
        raise TuilabError(f"{where}: the sweep makes {n:,} runs (more than {MAX_RUNS:,}); "
                          "split it, or use mode = \"zip\"")
    return sweep.combinations()


def as_tables(settings: dict) -> dict:
    """{'optimizer.lr': 0.1, ...} -> {'optimizer': {'lr': 0.1}, ...}."""
    tables: dict = {}
    for key, value in settings.items():
        table, name = key.split(".")
        tables.setdefault(table, {})[name] = value
    return tables


def value_text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(value_text(v) for v in value) or "none"
    return str(value)


def axis_names(keys) -> dict[str, str]:
    """Short names for labels: the key's last part, unless two axes share it."""
    keys = list(keys)
    last = ["optimizer" if k == "optimizer.name" else k.split(".")[1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def settings_label(settings: dict, names: dict[str, str]) -> str:
    """'lr=0.001 seed=1'; an optimizer's name stands alone ('adam lr=0.001')."""
    parts = []
    for key, value in settings.items():
        if key == "optimizer.name":
            parts.append(str(value))
        else:
            parts.append(f"{names.get(key, key)}={value_text(value)}")
    return " ".join(parts)


def axes_of_runs(settings_of_runs) -> tuple[tuple[str, tuple], ...]:
    """The axes read back from each run's settings (config.toml spells the runs out)."""
    axes: dict[str, list] = {}
    for settings in settings_of_runs:
        for key, value in settings.items():
            values = axes.setdefault(key, [])
            if value not in values:
                values.append(value)
    return tuple((k, tuple(v)) for k, v in axes.items())
