"""Presets: TOML files -> validated, fully resolved experiment configurations.

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
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tuilab.engine import data as data_mod
from tuilab.engine.model import (
    BIAS_INITS,
    DTYPES,
    HIDDEN_ACTIVATIONS,
    INITIALISERS,
    LOSSES,
    MLP,
    OUTPUT_ACTIVATIONS,
)
from tuilab.engine.optim import OPTIMIZER_NAMES, resolve_hyperparameters
from tuilab.engine.schedules import SCHEDULES, Schedule
from tuilab.errors import TuilabError

# ---- value checks: each returns the normalised value or raises TuilabError(message) ----

def _int(lo=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
            raise TuilabError(f"must be a whole number{f' >= {lo}' if lo is not None else ''}, got {v!r}")
        return v
    return check


def _float(lo=None, hi=None, lo_open=False, hi_open=True):
    def check(v):
        ok = not isinstance(v, bool) and isinstance(v, (int, float))
        if ok and lo is not None:
            ok = v > lo if lo_open else v >= lo
        if ok and hi is not None:
            ok = v < hi if hi_open else v <= hi
        if not ok:
            lb = "(" if lo_open else "["
            rb = ")" if hi_open else "]"
            rng = f" in {lb}{lo}, {hi}{rb}" if lo is not None and hi is not None else (
                f" >= {lo}" if lo is not None else "")
            raise TuilabError(f"must be a number{rng}, got {v!r}")
        return float(v)
    return check


def _choice(allowed):
    allowed = tuple(allowed)

    def check(v):
        if v not in allowed:
            close = difflib.get_close_matches(str(v), [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TuilabError(f"must be one of {', '.join(map(str, allowed))}, got {v!r}{hint}")
        return v
    return check


def _str(v):
    if not isinstance(v, str):
        raise TuilabError(f"must be a string, got {v!r}")
    return v


def _hidden(v):
    if not isinstance(v, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in v):
        raise TuilabError(f"must be a list of layer widths (whole numbers >= 1), e.g. [128, 64]; got {v!r}")
    return v


def _activation(v):
    if isinstance(v, list):
        return [_choice(HIDDEN_ACTIVATIONS)(a) for a in v]
    return _choice(HIDDEN_ACTIVATIONS)(v)


def _point(v):
    if (not isinstance(v, list) or len(v) != 2
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v)):
        raise TuilabError(f"must be a point [x, y], got {v!r}")
    return [float(x) for x in v]


# table -> key -> (check, default). [optimizer] and [schedule] are checked by their own modules.
SCHEMA = {
    "data": {
        "name": (_choice(data_mod.DATASETS), "digits"),
        "val_fraction": (_float(0.0, 1.0), 0.1),
        "test_fraction": (_float(0.0, 1.0), 0.2),  # 0: test on the training set (xor)
        "normalize": (_choice(data_mod.NORMALIZE), "unit"),
        "target": (_choice(data_mod.TARGETS), "classes"),
        "train_samples": (_int(0), 0),
        "n_samples": (_int(4), 1000),
        "noise": (_float(0.0), 0.1),
        "seed": (_int(0), 0),
    },
    "model": {
        "hidden": (_hidden, [30]),
        "activation": (_activation, "relu"),
        "init": (_choice(INITIALISERS), "xavier_normal"),
        "bias_init": (_choice(BIAS_INITS), "zeros"),
        "output": (_choice(OUTPUT_ACTIVATIONS), "softmax"),
        "loss": (_choice(LOSSES), "cross_entropy"),
        "dtype": (_choice(DTYPES), "float32"),
    },
    "train": {
        "epochs": (_int(1), 10),
        "batch_size": (_int(0), 64),  # 0: the whole training set in one batch
        "seed": (_int(0), 0),
    },
    "surface": {
        "name": (_str, "rosenbrock"),
        "start": (_point, None),
        "steps": (_int(1), 1000),
        "a": (_float(), None),
        "b": (_float(), None),
        "A": (_float(0.0), None),
        "wall": (_float(0.0), None),
        "condition": (_float(1.0), None),
        "max_points": (_int(2), 2000),
    },
}
NETWORK_TABLES = ("data", "model", "optimizer", "schedule", "train")
SURFACE_TABLES = ("surface", "optimizer")
TOP_KEYS = ("title", "description", "runs", *NETWORK_TABLES, "surface")


@dataclass(frozen=True)
class RunConfig:
    """One run of an experiment: its label and its fully resolved tables."""

    label: str
    tables: dict

    def __getitem__(self, table: str) -> dict:
        return self.tables[table]


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

    def to_toml(self) -> str:
        """The resolved configuration, loadable again with --preset (each run fully spelt out)."""
        from tuilab.engine.tomlwrite import dumps

        doc = {"title": self.title, "description": self.description, **copy.deepcopy(self.base)}
        doc["runs"] = [{"label": r.label, **copy.deepcopy(r.tables)} for r in self.runs]
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
    if d["val_fraction"] + (d["test_fraction"] if d["name"] not in data_mod.IMAGE_SETS else 0) >= 1:
        raise TuilabError(f"{where}: [data] val_fraction + test_fraction must stay below 1")


def _resolve_surface(where: str, table: dict) -> dict:
    """The [surface] table with the landscape's own parameters and start filled in."""
    from tuilab.engine.surfaces import SURFACE_PARAMS, check_surface_table, landscape_of

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
    from tuilab.engine.surfaces import check_surface_table

    try:
        check_surface_table(t["surface"])
    except TuilabError as exc:
        raise TuilabError(f"{source}: run {label!r}: [surface] {exc}") from None


def parse_override(text: str) -> tuple[str, object]:
    """'optimizer.lr=0.01' -> ('optimizer.lr', 0.01); the value is read as TOML, else as a string."""
    if "=" not in text:
        raise TuilabError(f"--set {text!r}: write it as key=value, e.g. --set optimizer.lr=0.01")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a name such as adam or fashion-mnist
    return key, value


def _overrides_as_tables(overrides, lab: str) -> tuple[dict, dict]:
    """--set pairs -> ({table: {key: value}}, {top-level key: value})."""
    tables: dict = {}
    top: dict = {}
    valid = NETWORK_TABLES if lab == "network" else SURFACE_TABLES
    for key, value in overrides:
        parts = key.split(".")
        if len(parts) == 1 and key in ("title", "description"):
            top[key] = value
            continue
        if len(parts) != 2 or parts[0] not in valid:
            raise TuilabError(f"--set {key!r}: use table.key with table one of {', '.join(valid)} "
                              "(e.g. optimizer.lr=0.01, train.epochs=5)")
        tables.setdefault(parts[0], {})[parts[1]] = value
    return tables, top


def build_experiment(doc: dict, source: str, name: str, overrides=()) -> Experiment:
    """Validate a parsed preset, merge runs over the base, apply --set overrides."""
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
    over_tables, over_top = _overrides_as_tables(overrides, lab)
    base = {t: doc.get(t, {}) for t in tables}
    for t, v in base.items():
        if not isinstance(v, dict):
            raise TuilabError(f"{source}: {t} must be a table ([{t}])")
    raw_runs = doc.get("runs", [{}])
    if not isinstance(raw_runs, list) or not all(isinstance(r, dict) for r in raw_runs) or not raw_runs:
        raise TuilabError(f"{source}: runs must be a list of tables ([[runs]] entries)")

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
        extra = set(entry) - {"label", *tables}
        if extra:
            raise _unknown(where, "runs", sorted(extra)[0], ("label", *tables))
        for table in tables:
            if table in entry and not isinstance(entry[table], dict):
                raise TuilabError(f"{where}: {table} must be a table ({{ key = value, ... }})")
        merged = _merge_tables(_merge_tables(base, {t: entry[t] for t in tables if t in entry}), over_tables)
        resolved = resolve(merged, where)
        label = entry.get("label") or _default_label(resolved)
        if not isinstance(label, str):
            raise TuilabError(f"{where}: label must be a string")
        if label in labels:
            labels[label] += 1
            label = f"{label} #{labels[label]}"
        labels.setdefault(label, 1)
        check = _check_surface_run if lab == "surface" else _check_network_run
        check(source, label, resolved)
        runs.append(RunConfig(label, resolved))
    base_out = resolve(_merge_tables(base, over_tables), source)
    return Experiment(name, over_top.get("title", doc.get("title", name)),
                      over_top.get("description", doc.get("description", "")), lab, base_out,
                      tuple(runs), source)


# ---- finding presets ----

def builtin_presets_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    inside = here / "presets"  # in an installed wheel
    return inside if inside.is_dir() else here.parent / "presets"  # in a source checkout


def user_presets_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tuilab" / "presets"


def preset_paths() -> dict[str, list[tuple[str, Path]]]:
    """{'builtin': [(name, path)...], 'user': [...]} sorted by name."""
    out = {}
    for group, folder in (("builtin", builtin_presets_dir()), ("user", user_presets_dir())):
        files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        out[group] = [(p.stem, p) for p in files]
    return out


def find_preset(name_or_path: str) -> Path:
    """A preset name (built-in or the user's) or a path to a TOML file."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or os.sep in name_or_path or "/" in name_or_path:
        if not p.is_file():
            raise TuilabError(f"preset file {name_or_path} does not exist")
        return p
    known = {}
    for group in preset_paths().values():
        for stem, path in group:
            known.setdefault(stem, path)
    if name_or_path not in known:
        close = difflib.get_close_matches(name_or_path, list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TuilabError(f"unknown preset {name_or_path!r}; `tuilab list` shows them all.{hint}")
    return known[name_or_path]


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise TuilabError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise TuilabError(f"cannot read preset {path}: {exc.strerror}") from None


def load_experiment(name_or_path: str, overrides=()) -> Experiment:
    """Find, read and resolve a preset, with (key, value) overrides applied to every run."""
    path = find_preset(name_or_path)
    shown = path.name if path.parent == builtin_presets_dir() else str(path)
    return build_experiment(read_toml(path), shown, path.stem, overrides)


@dataclass(frozen=True)
class PresetInfo:
    """What a preset browser shows before anything is resolved."""

    name: str
    path: Path
    title: str
    description: str
    lab: str  # "network" or "surface"
    error: str | None = None


def preset_catalog() -> dict[str, list[PresetInfo]]:
    """{'Networks': [...], 'Surfaces': [...], 'Your presets': [...]}: every preset, read but not run."""
    groups: dict[str, list[PresetInfo]] = {"Networks": [], "Surfaces": [], "Your presets": []}
    for group, entries in preset_paths().items():
        for name, path in entries:
            try:
                doc = read_toml(path)
                info = PresetInfo(name, path, str(doc.get("title", name)), str(doc.get("description", "")),
                                  "surface" if "surface" in doc else "network")
            except TuilabError as exc:
                info = PresetInfo(name, path, name, "", "network", str(exc))
            key = ("Your presets" if group == "user"
                   else "Surfaces" if info.lab == "surface" else "Networks")
            groups[key].append(info)
    return groups
