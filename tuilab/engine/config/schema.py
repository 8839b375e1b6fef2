"""What a preset's tables may hold: each key's check and default, and the tables of each lab."""

from __future__ import annotations

import difflib

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
        "internals": (_bool, True),  # record the optimizer's internals each epoch (engine.internals)
    },
    "surface": {
        "name": (_str, "rosenbrock"),
        "start": (_point, None),
        "steps": (_int(1), 1000),
        **{key: (_float(floor), None) for key, floor in PARAM_FLOORS.items()},  # the landscapes' own
        "max_points": (_int(2), 2000),
    },
}
NETWORK_TABLES = ("data", "model", "optimizer", "schedule", "train")
SURFACE_TABLES = ("surface", "optimizer")
TOP_KEYS = ("title", "description", "runs", "sweep", "lr_range", *NETWORK_TABLES, "surface")
