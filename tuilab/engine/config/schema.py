"""What a preset's tables may hold: each table a frozen dataclass whose fields carry their check and default
(SCHEMA is read off them), and the tables of each lab."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace

from tuilab.engine.data import sets as data_mod
from tuilab.engine.nn.model import (
    BIAS_INITS,
    DTYPES,
    HIDDEN_ACTIVATIONS,
    INITIALISERS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
)
from tuilab.engine.surfaces.params import PARAM_FLOORS
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


def _bool(v):
    if not isinstance(v, bool):
        raise TuilabError(f"must be true or false, got {v!r}")
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


def _key(check, default=None):
    """A preset key: its check (returns the value normalised, or raises TuilabError) and the default a preset
    that leaves it out gets (None: none is filled in)."""
    return field(default=None, metadata={"check": check, "default": default})


def _frozen(value):
    """A TOML value as a frozen dataclass holds it: lists as tuples."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


class _Table:
    """A preset table, typed and frozen, built once from its resolved dict (`of`)."""

    @classmethod
    def of(cls, table: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: _frozen(v) for k, v in table.items() if k in names})


@dataclass(frozen=True)
class DataTable(_Table):
    """[data]: which data set, and how it is split and normalised."""

    name: str = _key(_choice(data_mod.DATASETS), "digits")
    val_fraction: float = _key(_float(0.0, 1.0), 0.1)
    test_fraction: float = _key(_float(0.0, 1.0), 0.2)  # 0: test on the training set (xor)
    normalize: str = _key(_choice(data_mod.NORMALIZE), "unit")
    target: str = _key(_choice(data_mod.TARGETS), "classes")
    train_samples: int = _key(_int(0), 0)
    n_samples: int = _key(_int(4), 1000)
    noise: float = _key(_float(0.0), 0.1)
    seed: int = _key(_int(0), 0)
    classes: int | None = _key(_int(2))  # blobs and spirals: how many classes (else their own 3 and 2)
    path: str | None = _key(_str)  # name = "csv": the file (relative to where tuilab runs)
    label: str | None = _key(_str)  # name = "csv": the label column's name (default: the last column)


@dataclass(frozen=True)
class ModelTable(_Table):
    """[model]: the network's shape and numbers."""

    hidden: tuple[int, ...] = _key(_hidden, [30])
    activation: str | tuple[str, ...] = _key(_activation, "relu")  # one name, or one per hidden layer
    init: str = _key(_choice(INITIALISERS), "xavier_normal")
    bias_init: str = _key(_choice(BIAS_INITS), "zeros")
    output: str = _key(_choice(OUTPUT_ACTIVATIONS), "softmax")
    loss: str = _key(_choice(LOSSES), "cross_entropy")
    dtype: str = _key(_choice(DTYPES), "float32")


@dataclass(frozen=True)
class TrainTable(_Table):
    """[train]: how long, in what batches, from which seed."""

    epochs: int = _key(_int(1), 10)
    batch_size: int = _key(_int(0), 64)  # 0: the whole training set in one batch
    seed: int = _key(_int(0), 0)
    internals: bool = _key(_bool, True)  # record the optimizer's internals each epoch (engine.nn.internals)
    snapshots: int = _key(_int(0), 64)  # θ kept at up to this many epochs, for tuilab landscape (0: none)
    fork_points: int = _key(_int(0), 8)  # whole checkpoints kept at up to this many epochs, for tuilab fork (0: none)
    sharpness_every: int = _key(_int(0), 0)  # λ_max of the Hessian every k epochs (engine.nn.sharpness; 0: off)


@dataclass(frozen=True)
class SurfaceTable(_Table):
    """[surface]: the landscape (its name and own parameters, engine.surfaces.params) and where a run starts."""

    name: str = _key(_str, "rosenbrock")
    start: tuple[float, float] = _key(_point)
    steps: int = _key(_int(1), 1000)
    max_points: int = _key(_int(2), 2000)
    params: dict = field(default_factory=dict)  # the landscape's own (a, b, A, wall, condition)

    @classmethod
    def of(cls, table: dict):
        own = {k: v for k, v in table.items() if k not in PARAM_FLOORS}
        return replace(super().of(own), params={k: v for k, v in table.items() if k in PARAM_FLOORS})


@dataclass(frozen=True)
class OptimizerTable:
    """[optimizer]: its name and every hyperparameter, resolved and checked once by the registry
    (engine.nn.optim.resolve_hyperparameters); pairs as tuples."""

    name: str
    lr: float
    hyper: dict  # every hyperparameter, lr included, as Optimizer takes them

    @classmethod
    def of(cls, table: dict):
        hyper = {k: _frozen(v) for k, v in table.items() if k != "name"}
        return cls(table["name"], float(table["lr"]), hyper)


@dataclass(frozen=True)
class ScheduleTable:
    """[schedule]: a learning-rate schedule's name and parameters (engine.nn.schedules)."""

    name: str
    params: dict

    @classmethod
    def of(cls, table: dict):
        return cls(table["name"], {k: v for k, v in table.items() if k != "name"})


def _schema_of(cls) -> dict:
    return {f.name: (f.metadata["check"], f.metadata["default"]) for f in fields(cls) if "check" in f.metadata}


# table -> key -> (check, default), read off the typed tables. [optimizer] and [schedule] are checked by their
# own modules (the registry, the schedules)
SCHEMA = {
    "data": _schema_of(DataTable),
    "model": _schema_of(ModelTable),
    "train": _schema_of(TrainTable),
    "surface": {**_schema_of(SurfaceTable), **{key: (_float(floor), None) for key, floor in PARAM_FLOORS.items()}},
}
TYPED = {"data": DataTable, "model": ModelTable, "train": TrainTable, "surface": SurfaceTable,
         "optimizer": OptimizerTable, "schedule": ScheduleTable}
NETWORK_TABLES = ("data", "model", "optimizer", "schedule", "train")
SURFACE_TABLES = ("surface", "optimizer")
TOP_KEYS = ("title", "description", "runs", "sweep", "lr_range", "atlas", "race", *NETWORK_TABLES, "surface")
