"""Preset documents -> validated, fully resolved experiment configurations (finding and reading
the files: config.presets; --set: config.overrides).

A preset has base tables ([data], [model], [optimizer], [schedule], [train], or
[surface] for a 2-D landscape) and an optional [[runs]] list; each run is the base
with its own tables merged over it. When a run (or a --set) names another optimizer,
its [optimizer] table replaces the base one instead of merging, since the base's
hyperparameters belong to the base's optimizer. Every mistake is a TuilabError of one
line that names the file and the key.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field, replace

from tuilab.engine.config.atlas import AtlasSpec, check_axis_for_run, parse_atlas
from tuilab.engine.config.lr_range import LrRange, parse_lr_range
from tuilab.engine.config.overrides import overrides_as_tables
from tuilab.engine.config.race import RaceSpec, parse_race
from tuilab.engine.config.schema import (
    NETWORK_TABLES,
    SCHEMA,
    SURFACE_TABLES,
    TOP_KEYS,
    TYPED,
    DataTable,
    ModelTable,
    OptimizerTable,
    ScheduleTable,
    SurfaceTable,
    TrainTable,
)
from tuilab.engine.config.sweep import (
    Sweep,
    as_tables,
    axes_of_runs,
    axis_names,
    check_combinations,
    parse_sweep_table,
    settings_label,
    with_axes,
)
from tuilab.engine.data import sets as data_mod
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import OPTIMIZER_NAMES, check_for_surfaces, get_spec, resolve_hyperparameters
from tuilab.engine.nn.schedules import SCHEDULES, Schedule
from tuilab.engine.surfaces.params import landscape_key
from tuilab.errors import TuilabError


@dataclass(frozen=True)
class RunConfig:
    """One run of an experiment: its label, its fully resolved tables (as a preset spells them, for config.toml
    and the edit form) and the same tables typed and frozen (schema's DataTable, ModelTable, ...), built once
    here: what every reader uses. A lab's tables it does not have are None (a surface run has no model)."""

    label: str
    tables: dict
    settings: dict = field(default_factory=dict)  # a sweep's axes -> this run's values
    data: DataTable | None = field(init=False, default=None, compare=False, repr=False)
    model: ModelTable | None = field(init=False, default=None, compare=False, repr=False)
    train: TrainTable | None = field(init=False, default=None, compare=False, repr=False)
    schedule: ScheduleTable | None = field(init=False, default=None, compare=False, repr=False)
    optimizer: OptimizerTable | None = field(init=False, default=None, compare=False, repr=False)
    surface: SurfaceTable | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self):
        for name, cls in TYPED.items():
            if name in self.tables:
                object.__setattr__(self, name, cls.of(self.tables[name]))


@dataclass(frozen=True)
class Experiment:
    """A resolved preset: where it came from, what it is, and its runs."""

    name: str
    title: str
    description: str
    lab: str  # "network" or "surface": which lab it runs in
    base: dict
    runs: tuple[RunConfig, ...]
    source: str
    sweep: Sweep | None = None
    lr_range: LrRange | None = None  # a learning-rate range test of each run instead of training it
    atlas: AtlasSpec | None = None  # a surface preset's [atlas]: a run at every pair of two settings' values
    race: RaceSpec | None = None  # a fair race: each run tuned, then raced over seeds (engine.training.race)

    def to_toml(self) -> str:
        """The resolved configuration, loadable again with --preset (each run fully spelt out, with
        its sweep settings; [sweep] keeps the options, not the axes, which the runs already are)."""
        from tuilab.engine.config.tomlwrite import dumps

        doc = {"title": self.title, "description": self.description, **copy.deepcopy(self.base)}
        if self.sweep is not None:
            doc["sweep"] = self.sweep.options()
        if self.lr_range is not None:
            doc["lr_range"] = self.lr_range.options()
        if self.atlas is not None:
            doc["atlas"] = self.atlas.options()
        if self.race is not None:
            doc["race"] = self.race.options()
        doc["runs"] = [{"label": r.label, **({"settings": dict(r.settings)} if r.settings else {}),
                        **copy.deepcopy(r.tables)} for r in self.runs]
        return dumps(doc)


def _where(source: str, table: str | None, key: str | None) -> str:
    place = f"[{table}]" if table else ""
    if key:
        place = f"{place} {key}" if place else key
    return f"{source}: {place}" if place else source


def _unknown(source: str, table: str | None, key: str, allowed) -> TuilabError:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(allowed)}"
    where = f"[{table}]" if table else "the top level"
    return TuilabError(f"{source}: unknown key {key!r} in {where}{hint}")


def _check_table(source: str, table: str, values: dict, fill: bool) -> dict:
    """A schema table's values checked (and, if fill, completed with the defaults)."""
    schema = SCHEMA[table]
    out = {}
    for key, value in values.items():
        if key not in schema:
            raise _unknown(source, table, key, schema)
        try:
            out[key] = schema[key][0](value)
        except TuilabError as exc:
            raise TuilabError(f"{_where(source, table, key)} {exc}") from None
    if fill:
        for key, (_, default) in schema.items():
            if key not in out and default is not None:
                out[key] = copy.deepcopy(default)
    return out


def _merge_tables(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for table, values in over.items():
        if not isinstance(values, dict):
            out[table] = copy.deepcopy(values)
            continue
        old = out.get(table, {})
        if table == "optimizer" and "name" in values and values["name"] != old.get("name"):
            old = {}  # another optimizer: the base's hyperparameters are not its own
        if table == "schedule" and "name" in values and values["name"] != old.get("name"):
            old = {}
        out[table] = {**old, **copy.deepcopy(values)}
    return out


def _resolve_optimizer(source: str, values: dict) -> dict:
    values = dict(values)
    name = values.pop("name", "sgd")
    if name not in OPTIMIZER_NAMES:
        close = difflib.get_close_matches(str(name), OPTIMIZER_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(OPTIMIZER_NAMES)}"
        raise TuilabError(f"{_where(source, 'optimizer', 'name')}: unknown optimizer {name!r}{hint}")
    try:
        hyper = resolve_hyperparameters(name, values)
    except TuilabError as exc:
        raise TuilabError(f"{_where(source, 'optimizer', None)}: {exc}") from None
    return {"name": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in hyper.items()}}


def _resolve_schedule(source: str, values: dict) -> dict:
    values = dict(values)
    name = values.pop("name", "constant")
    try:
        sched = Schedule.make(name, **values)
    except TuilabError as exc:
        raise TuilabError(f"{_where(source, 'schedule', None)}: {exc}") from None
    keys = set(SCHEDULES[name]) | {"warmup", "warmup_start_factor"}
    return {"name": name, **{k: getattr(sched, k) for k in sorted(keys)}}


def _default_label(tables: dict) -> str:
    opt = tables.get("optimizer", {})
    return f"{opt.get('name', 'sgd')} lr={opt.get('lr', 0):g}"


def _check_network_run(source: str, label: str, t: dict) -> None:
    """Cross-table rules, and building the pieces once so that every error shows before a run."""
    where = f"{source}: run {label!r}"
    d, m = t["data"], t["model"]
    regression = d["name"] in data_mod.synthetic.REGRESSION or d["target"] == "value"
    if d.get("classes") is not None and d["name"] not in data_mod.synthetic.MANY_CLASSES:
        raise TuilabError(f"{where}: [data] classes is for {' and '.join(data_mod.synthetic.MANY_CLASSES)}; "
                          f"{d['name']!r} has its own")
    if d["name"] == data_mod.CSV:  # the file is read here, so that a bad one stops the preset before any run
        from tuilab.engine.data.csv_table import is_regression

        if not d.get("path"):
            raise TuilabError(f"{where}: [data] name = 'csv' needs path = 'FILE.csv' (or --data FILE.csv)")
        regression = regression or is_regression(d["path"], d.get("label"))
    if regression and m["loss"] != "squared_error":
        raise TuilabError(f"{where}: a regression target (data {d['name']!r}, target {d['target']!r}) "
                          "needs model.loss = 'squared_error'")
    if regression and m["output"] == "softmax":
        raise TuilabError(f"{where}: a regression target has one output; softmax over one output is "
                          "constant; use model.output = 'identity' or 'sigmoid'")
    if isinstance(m["activation"], list) and len(m["activation"]) != len(m["hidden"]):
        raise TuilabError(f"{where}: [model] activation lists {len(m['activation'])} activations for "
                          f"{len(m['hidden'])} hidden layers; give one name or one per layer")
    try:
        MLP([1, *m["hidden"], 2], m["activation"], m["output"], m["loss"], m["dtype"])
    except TuilabError as exc:
        raise TuilabError(f"{where}: [model] {exc}") from None
    if get_spec(t["optimizer"]["name"]).closure is not None and t["train"]["batch_size"] != 0:
        raise TuilabError(f"{where}: {t['optimizer']['name']} re-evaluates the loss within a step on the same "
                          f"batch, so it takes the whole training set each step: set train.batch_size = 0 "
                          f"(it is {t['train']['batch_size']})")
    if d["val_fraction"] + (d["test_fraction"] if d["name"] not in data_mod.IMAGE_SETS else 0) >= 1:
        raise TuilabError(f"{where}: [data] val_fraction + test_fraction must stay below 1")


def _resolve_surface(where: str, table: dict) -> dict:
    """The [surface] table with the landscape's own parameters and start filled in."""
    from tuilab.engine.surfaces.landscapes import SURFACE_PARAMS, check_surface_table, landscape_of

    try:
        check_surface_table(table)
    except TuilabError as exc:
        raise TuilabError(f"{where}: [surface] {exc}") from None
    land = landscape_of(table)
    out = dict(table)
    out.setdefault("start", list(land.default_start))
    for key, default in SURFACE_PARAMS.get(table["name"], {}).items():
        out.setdefault(key, default)
    return out


def _check_surface_run(source: str, label: str, t: dict) -> None:
    from tuilab.engine.surfaces.landscapes import check_surface_table

    try:
        check_surface_table(t["surface"])
    except TuilabError as exc:
        raise TuilabError(f"{source}: run {label!r}: [surface] {exc}") from None
    try:
        check_for_surfaces(t["optimizer"]["name"])
    except TuilabError as exc:
        raise TuilabError(f"{source}: run {label!r}: {exc}") from None


def build_experiment(doc: dict, source: str, name: str, overrides=(), sweeps=(),
                     lr_range: bool | None = None, fair: bool | None = None) -> Experiment:
    """Validate a parsed preset, merge runs over the base, expand the sweep (its [sweep] and the
    --sweep axes), apply --set overrides; each run is base <- [[runs]] entry <- sweep values <- --set.
    lr_range True (--lr-range), or a --set of lr_range.KEY, makes it a range test of each run; False
    (--no-lr-range) trains a preset that has an [lr_range] table."""
    range_table = doc.get("lr_range") if lr_range is not False else None
    range_set = {k.split(".", 1)[1]: v for k, v in overrides if k.startswith("lr_range.")}
    overrides = [(k, v) for k, v in overrides if not k.startswith("lr_range.")]
    if lr_range or range_set:
        range_table = {**(range_table if isinstance(range_table, dict) else {}), **range_set}
    race_table = doc.get("race") if fair is not False else None
    race_set = {k.split(".", 1)[1]: v for k, v in overrides if k.startswith("race.")}
    overrides = [(k, v) for k, v in overrides if not k.startswith("race.")]
    if fair or race_set:
        race_table = {**(race_table if isinstance(race_table, dict) else {}), **race_set}
    atlas_table = doc.get("atlas")
    atlas_set = [(k.split(".", 1)[1], v) for k, v in overrides if k.startswith("atlas.")]
    overrides = [(k, v) for k, v in overrides if not k.startswith("atlas.")]
    if atlas_set:  # --set atlas.metric=minimum, atlas.x.n=80: a table of its own, made where there is none
        atlas_table = copy.deepcopy(atlas_table) if isinstance(atlas_table, dict) else {}
        for key, value in atlas_set:
            *path, last = key.split(".")
            table = atlas_table
            for part in path:
                if not isinstance(table.get(part), dict):
                    table[part] = {}
                table = table[part]
            table[last] = value
    for key in doc:
        if key not in TOP_KEYS:
            raise _unknown(source, None, key, TOP_KEYS)
    lab = "surface" if "surface" in doc else "network"
    tables = SURFACE_TABLES if lab == "surface" else NETWORK_TABLES
    for key in doc:
        if key in NETWORK_TABLES + ("surface",) and key not in tables:
            raise TuilabError(f"{source}: [{key}] does not belong in a "
                              f"{lab} preset")
    for key in ("title", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise TuilabError(f"{source}: {key} must be a string")
    over_tables, over_top = overrides_as_tables(overrides, NETWORK_TABLES if lab == "network" else SURFACE_TABLES)
    base = {t: doc.get(t, {}) for t in tables}
    for t, v in base.items():
        if not isinstance(v, dict):
            raise TuilabError(f"{source}: {t} must be a table ([{t}])")
    raw_runs = doc.get("runs", [{}])
    if not isinstance(raw_runs, list) or not all(isinstance(r, dict) for r in raw_runs) or not raw_runs:
        raise TuilabError(f"{source}: runs must be a list of tables ([[runs]] entries)")
    sweep = with_axes(parse_sweep_table(doc["sweep"], source) if "sweep" in doc else None, sweeps)
    combos = [{}]
    if sweep is not None and sweep.axes:
        for key, _ in sweep.axes:
            if key.split(".")[0] not in tables:
                raise TuilabError(f"{source}: sweep axis {key!r}: the table must be one of {', '.join(tables)}")
            if key in dict(overrides):
                raise TuilabError(f"--set {key} and the sweep axis {key} both set it; drop one of them")
        combos = check_combinations(sweep, source)
    names = axis_names(k for k, _ in sweep.axes) if sweep is not None else {}

    def resolve(t: dict, where: str) -> dict:
        out = {}
        for table in tables:
            values = t.get(table, {})
            if table == "optimizer":
                out[table] = _resolve_optimizer(where, values)
            elif table == "schedule":
                out[table] = _resolve_schedule(where, values)
            else:
                out[table] = _check_table(where, table, values, fill=True)
        if "surface" in out:
            out["surface"] = _resolve_surface(where, out["surface"])
        return out

    # the base tables are checked once on their own so their mistakes name no run
    for table in tables:
        if table in SCHEMA:
            _check_table(source, table, base[table], fill=False)
    runs = []
    labels: dict[str, int] = {}
    for i, entry in enumerate(raw_runs):
        where = f"{source}: [[runs]] {i + 1}" if "runs" in doc else source
        extra = set(entry) - {"label", "settings", *tables}
        if extra:
            raise _unknown(where, "runs", sorted(extra)[0], ("label", *tables))
        for table in tables:
            if table in entry and not isinstance(entry[table], dict):
                raise TuilabError(f"{where}: {table} must be a table ({{ key = value, ... }})")
        if not isinstance(entry.get("settings", {}), dict):
            raise TuilabError(f"{where}: settings must be a table of the sweep's values")
        own = _merge_tables(base, {t: entry[t] for t in tables if t in entry})
        for combo in combos:
            at = f"{where} (sweep {settings_label(combo, names)})" if combo else where
            merged = _merge_tables(_merge_tables(own, as_tables(combo)), over_tables)
            resolved = resolve(merged, at)
            label = entry.get("label")
            if label is not None and not isinstance(label, str):
                raise TuilabError(f"{where}: label must be a string")
            if combo:
                label = " ".join(filter(None, [label if "runs" in doc else None, settings_label(combo, names)]))
            label = label or _default_label(resolved)
            if label in labels:
                labels[label] += 1
                label = f"{label} #{labels[label]}"
            labels.setdefault(label, 1)
            check = _check_surface_run if lab == "surface" else _check_network_run
            check(source, label, resolved)
            runs.append(RunConfig(label, resolved, {**entry.get("settings", {}), **combo}))
    if lab == "surface" and len({landscape_key(r.tables["surface"]) for r in runs}) > 1:
        raise TuilabError(f"{source}: every run of a surface preset must use the same landscape (name and "
                          "parameters), drawn once beneath them all; start, steps and max_points may differ")
    if sweep is not None and not sweep.axes:  # config.toml: the runs carry their settings
        axes = axes_of_runs(r.settings for r in runs)
        sweep = replace(sweep, axes=axes)
    base_out = resolve(_merge_tables(base, over_tables), source)
    spec = None
    if range_table is not None:
        if lab != "network":
            raise TuilabError(f"{source}: a learning-rate range test trains a network; a surface preset has no "
                              "minibatch loss to watch (drop [lr_range] / --lr-range)")
        if sweep is not None and sweep.prune == "halving":
            raise TuilabError(f"{source}: a range test has no epochs to prune at: drop prune from [sweep]")
        spec = parse_lr_range(range_table, source)
    atlas = None
    if atlas_table is not None:
        if lab != "surface":
            raise TuilabError(f"{source}: an atlas runs a 2-D landscape at every pair of two settings; a network "
                              "preset has none (drop [atlas])")
        atlas = parse_atlas(atlas_table, source)
        for run in runs:
            for axis in (atlas.x, atlas.y):
                if axis is not None:
                    check_axis_for_run(axis, run.optimizer.name, run.optimizer.hyper, source, run.label)
    race = None
    if race_table is not None:
        if lab != "network":
            raise TuilabError(f"{source}: a fair race tunes and races networks; a surface preset's runs take "
                              "milliseconds: give it an [atlas] over lr instead (drop [race] / --fair)")
        if spec is not None:
            raise TuilabError(f"{source}: a range test and a fair race are two experiments: drop [lr_range] or "
                              "[race]")
        if sweep is not None and sweep.prune != "none":
            raise TuilabError(f"{source}: a fair race does its own halving (over each run's learning rates): "
                              "drop prune from [sweep]")
        race = parse_race(race_table, source)
    return Experiment(name, over_top.get("title", doc.get("title", name)),
                      over_top.get("description", doc.get("description", "")), lab, base_out,
                      tuple(runs), source, sweep, spec, atlas, race)
