"""The optimizer registry (name -> kernel, torch-named defaults, state slots) and a small handle.

Names and defaults follow torch.optim where PyTorch has the optimizer; qhm/qhadam
follow Ma & Yarats (2019), lion Chen et al. (2023).  Demon (Chen et al. 2019) is a
switch on every optimizer with a momentum or first-moment term (`demon = true`,
`demon_steps = T`), and `demon_<name>` is registered for each of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tuilab.engine.nn.lbfgs import LBFGS, state_from_arrays, state_to_arrays
from tuilab.errors import TuilabError, choice_error
from tuilab.kernels import optimizers as K

# How each hyperparameter is checked: a rule name -> (test, words for the message).
_RULES = {
    "positive": (lambda x: x > 0, "a number > 0"),
    "nonneg": (lambda x: x >= 0, "a number >= 0"),
    "unit": (lambda x: 0 <= x < 1, "a number in [0, 1)"),
    "unit_closed": (lambda x: 0 <= x <= 1, "a number in [0, 1]"),
    "nonpos": (lambda x: x <= 0, "a number <= 0"),
    "at_least_one": (lambda x: x >= 1, "a number >= 1"),
    # "none" (or None; TOML has no null) stands for a default that depends on the run, as torch's
    # None does: Adafactor's eps[0] is then the dtype's machine epsilon
    "nonneg_or_none": (lambda x: x >= 0, 'a number >= 0 or "none"'),
    "any": (lambda x: True, "a number"),
    "ns_steps": (lambda x: x == int(x) and 0 <= x < 100, "a whole number from 0 to 99"),
    "count": (lambda x: x == int(x) and x >= 1, "a whole number >= 1"),
    "count_or_none": (lambda x: x == int(x) and x >= 1, 'a whole number >= 1 or "none"'),
}
_WHOLE = {"ns_steps", "count", "count_or_none"}  # rules whose numbers are counts: kept as int
_NONE_STANDS_IN = -1.0  # what a "none" hyperparameter is in the kernel's hp vector
_PARAM_RULES = {
    "lr": "positive",
    "momentum": "unit",
    "dampening": "unit_closed",
    "weight_decay": "nonneg",
    "lr_decay": "nonneg",
    "initial_accumulator_value": "nonneg",
    "eps": "nonneg",
    "alpha": "unit",
    "rho": "unit_closed",
    "betas": "unit",
    "nus": "unit_closed",
    "nu": "unit_closed",
    "momentum_decay": "nonneg",
    "etas": "positive",
    "step_sizes": "nonneg",
    "lambd": "nonneg",
    "t0": "nonneg",
    "beta2_decay": "nonpos",
    "d": "at_least_one",
    "ns_steps": "ns_steps",
    "ns_coefficients": "any",
    "max_iter": "count",
    "max_eval": "count_or_none",
    "history_size": "count",
    "tolerance_grad": "nonneg",
    "tolerance_change": "nonneg",
}
# hyperparameters that are a word: name -> the words, in the order the kernel numbers them
_CHOICES = {"adjust_lr_fn": ("original", "match_rms_adamw"), "line_search_fn": ("none", "strong_wolfe")}
PAIRS = ("betas", "nus", "etas", "step_sizes")  # hyperparameters given as two numbers
_BOOLS = {"nesterov", "amsgrad", "centered", "decoupled_weight_decay", "demon", "maximize"}


@dataclass(frozen=True)
class OptimizerSpec:
    """One registered optimizer: its step kernel, hp order, defaults and state slots."""

    name: str
    step: object  # a kernel in kernels.optimizers.STEP_KERNELS
    hp_order: tuple[str, ...]  # flat hp names in kernel order ("betas" expands to 2)
    defaults: dict
    slots: tuple[str, ...]
    summary: str
    momentum_param: str | None = None  # what Demon decays: a name in hp_order
    slot_init: dict = field(default_factory=dict)  # slot -> hyperparameter giving its start value
    fixed: dict = field(default_factory=dict)  # hp not settable under this name (e.g. adamw)
    maximize: bool = False  # takes torch's `maximize` (ascend): the optimizers torch.optim has
    rules: dict = field(default_factory=dict)  # hp -> a rule in _RULES where it differs from _PARAM_RULES
    shadow: str | None = None  # a slot holding a second point worth showing (ASGD's running average)
    tuples: dict = field(default_factory=dict)  # hp given as n numbers under this name only: name -> n
    rest: bool = False  # steps theta's matrices only, and hands the vectors to a `rest` optimizer (Muon)
    closure: object = None  # re-evaluates the loss within a step (L-BFGS): a class with step(theta, closure, lr)

    def width(self, key: str) -> int:
        """How many numbers hyperparameter `key` is: 2 for a pair, 1 for a plain number."""
        return 2 if key in PAIRS else self.tuples.get(key, 1)

    @property
    def whole_tensors(self) -> bool:
        """Works tensor by tensor (theta's tensor table ends its hp), so it must see whole matrices."""
        return self.closure is None and self.step in K.WHOLE_TENSOR_STEPS

    @property
    def opt_id(self) -> int:
        """The step kernel's row in the optimizer table: what the kernels dispatch on (-1: a closure optimizer)."""
        return -1 if self.closure is not None else K.opt_id_of(self.step)


def _flat_names(spec: OptimizerSpec) -> list[str]:
    out = []
    for name in spec.hp_order:
        width = spec.width(name)
        out += [f"{name}[{k}]" for k in range(width)] if width > 1 else [name]
    return out


REGISTRY: dict[str, OptimizerSpec] = {}
# the optimizers torch.optim has, which take its `maximize`
TORCH_NAMED = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "adamw",
               "nadam", "radam", "adamax", "rprop", "asgd", "adafactor"}


def _register(spec: OptimizerSpec) -> None:
    if spec.name in TORCH_NAMED and not spec.maximize:
        spec = OptimizerSpec(**{**spec.__dict__, "maximize": True})
    # a registry entry that cannot be checked or handed to a kernel fails here, at import,
    # in words, rather than as a KeyError on the first run that sets the hyperparameter
    if spec.closure is None and spec.step not in K.STEP_KERNELS:
        raise TuilabError(f"optimizer {spec.name}: its step kernel is not a row of "
                          "kernels.optimizers.STEP_KERNELS; add it there")
    for key in (*spec.defaults, *spec.fixed):
        if key not in _PARAM_RULES and key not in _BOOLS and key not in _CHOICES and key not in ("demon_steps", "rest"):
            raise TuilabError(f"optimizer {spec.name}: hyperparameter {key!r} has no rule; add it to "
                              "_PARAM_RULES (a number), _BOOLS (a switch) or _CHOICES (a word) in engine/nn/optim.py")
    for key in spec.hp_order:
        if key not in spec.defaults and key not in spec.fixed:
            raise TuilabError(f"optimizer {spec.name}: hp_order names {key!r}, which has no default")
    REGISTRY[spec.name] = spec


_SGD_ORDER = ("momentum", "dampening", "weight_decay", "nesterov")
_ADAM_ORDER = ("betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")
_ADAM_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)

_register(OptimizerSpec("sgd", K.sgd_step, _SGD_ORDER,
                        dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
                        ("momentum_buffer",), "stochastic gradient descent (torch.optim.SGD)",
                        momentum_param="momentum"))
_register(OptimizerSpec("momentum", K.sgd_step, _SGD_ORDER,
                        dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
                        ("momentum_buffer",), "SGD with heavy-ball momentum 0.9",
                        momentum_param="momentum"))
_register(OptimizerSpec("nesterov", K.sgd_step, _SGD_ORDER,
                        dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
                        ("momentum_buffer",), "SGD with Nesterov momentum 0.9",
                        momentum_param="momentum"))
_register(OptimizerSpec("adagrad", K.adagrad_step, ("lr_decay", "weight_decay", "eps"),
                        dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                             eps=1e-10),
                        ("sum",), "Adagrad (torch.optim.Adagrad)",
                        slot_init={"sum": "initial_accumulator_value"}))
_register(OptimizerSpec("rmsprop", K.rmsprop_step,
                        ("alpha", "eps", "weight_decay", "momentum", "centered"),
                        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                             centered=False),
                        ("square_avg", "momentum_buffer", "grad_avg"),
                        "RMSProp (torch.optim.RMSprop)", momentum_param="momentum"))
_register(OptimizerSpec("adadelta", K.adadelta_step, ("rho", "eps", "weight_decay"),
                        dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0),
                        ("square_avg", "acc_delta"), "Adadelta (torch.optim.Adadelta)"))
_register(OptimizerSpec("adam", K.adam_step, _ADAM_ORDER,
                        dict(_ADAM_DEFAULTS, decoupled_weight_decay=False),
                        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), "Adam (torch.optim.Adam)",
                        momentum_param="betas[0]"))
_register(OptimizerSpec("amsgrad", K.adam_step, _ADAM_ORDER,
                        dict(_ADAM_DEFAULTS, decoupled_weight_decay=False),
                        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), "Adam with amsgrad",
                        momentum_param="betas[0]", fixed={"amsgrad": True}))
_register(OptimizerSpec("adamw", K.adam_step, _ADAM_ORDER,
                        dict(_ADAM_DEFAULTS, weight_decay=1e-2),
                        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                        "Adam with decoupled weight decay (torch.optim.AdamW)",
                        momentum_param="betas[0]", fixed={"decoupled_weight_decay": True}))
_register(OptimizerSpec("nadam", K.nadam_step,
                        ("betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay"),
                        dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                             momentum_decay=4e-3, decoupled_weight_decay=False),
                        ("exp_avg", "exp_avg_sq"), "NAdam (torch.optim.NAdam)",
                        momentum_param="betas[0]"))
_register(OptimizerSpec("radam", K.radam_step,
                        ("betas", "eps", "weight_decay", "decoupled_weight_decay"),
                        dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                             decoupled_weight_decay=False),
                        ("exp_avg", "exp_avg_sq"), "RAdam (torch.optim.RAdam)",
                        momentum_param="betas[0]"))
_register(OptimizerSpec("adamax", K.adamax_step, ("betas", "eps", "weight_decay"),
                        dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
                        ("exp_avg", "exp_inf"), "Adamax (torch.optim.Adamax)",
                        momentum_param="betas[0]"))
_register(OptimizerSpec("qhm", K.qhm_step, ("momentum", "nu", "weight_decay", "decoupled_weight_decay"),
                        dict(lr=1e-2, momentum=0.999, nu=0.7, weight_decay=0.0,
                             decoupled_weight_decay=False),
                        ("momentum_buffer",), "quasi-hyperbolic momentum (Ma & Yarats 2019)",
                        momentum_param="momentum"))
_register(OptimizerSpec("qhadam", K.qhadam_step,
                        ("betas", "nus", "eps", "weight_decay", "decoupled_weight_decay"),
                        dict(lr=1e-3, betas=(0.995, 0.999), nus=(0.7, 1.0), eps=1e-8,
                             weight_decay=0.0, decoupled_weight_decay=False),
                        ("exp_avg", "exp_avg_sq"), "quasi-hyperbolic Adam (Ma & Yarats 2019)",
                        momentum_param="betas[0]"))
_register(OptimizerSpec("qhadamw", K.qhadam_step,
                        ("betas", "nus", "eps", "weight_decay", "decoupled_weight_decay"),
                        dict(lr=1e-3, betas=(0.995, 0.999), nus=(0.7, 1.0), eps=1e-8,
                             weight_decay=1e-2),
                        ("exp_avg", "exp_avg_sq"), "QHAdam with decoupled weight decay",
                        momentum_param="betas[0]", fixed={"decoupled_weight_decay": True}))
_register(OptimizerSpec("lion", K.lion_step, ("betas", "weight_decay"),
                        dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
                        ("exp_avg",), "Lion, sign momentum (Chen et al. 2023)",
                        momentum_param="betas[0]"))

_register(OptimizerSpec("rprop", K.rprop_step, ("etas", "step_sizes"),
                        dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)),
                        ("prev", "step_size"), "resilient backpropagation, for full batches (torch.optim.Rprop)",
                        slot_init={"step_size": "lr"}))

_register(OptimizerSpec("asgd", K.asgd_step, ("lambd", "alpha", "t0", "weight_decay"),
                        dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0),
                        ("ax",), "averaged SGD: the iterate and its running average (torch.optim.ASGD)",
                        rules={"alpha": "nonneg"}, shadow="ax"))

_register(OptimizerSpec("adafactor", K.adafactor_step, ("beta2_decay", "d", "eps", "weight_decay"),
                        dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0),
                        ("row_var", "col_var"),
                        "Adafactor: second moments of matrices as row and column means (torch.optim.Adafactor)",
                        tuples={"eps": 2}, rules={"eps[0]": "nonneg_or_none", "eps[1]": "nonneg"}))

_register(OptimizerSpec("muon", K.muon_step,
                        ("momentum", "nesterov", "weight_decay", "eps", "ns_steps", "ns_coefficients",
                         "adjust_lr_fn"),
                        dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                             ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5,
                             adjust_lr_fn="original", rest={"name": "adamw"}),
                        ("momentum_buffer",),
                        "Muon: each weight matrix's momentum orthogonalised by Newton-Schulz; biases to `rest` "
                        "(torch.optim.Muon beside AdamW)",
                        tuples={"ns_coefficients": 3}, rest=True))

_register(OptimizerSpec("lbfgs", None, (),
                        dict(lr=1.0, max_iter=20, max_eval="none", tolerance_grad=1e-7, tolerance_change=1e-9,
                             history_size=100, line_search_fn="none"),
                        (), "L-BFGS: quasi-Newton from the last history_size steps, re-evaluating the loss within a "
                        "step; full batches (torch.optim.LBFGS)", closure=LBFGS))


def _momentum_default(spec: OptimizerSpec) -> float:
    key = spec.momentum_param or ""
    return spec.defaults["betas"][0] if key == "betas[0]" else spec.defaults.get(key, 0.0)


# Demon variants of every optimizer whose momentum is on by default (not plain sgd/rmsprop).
for _base in [s for s in REGISTRY.values() if _momentum_default(s) > 0]:
    _register(OptimizerSpec(
        f"demon_{_base.name}", _base.step, _base.hp_order, dict(_base.defaults, demon_steps=0),
        _base.slots, f"{_base.summary} with Demon decaying momentum (Chen et al. 2019)",
        _base.momentum_param, _base.slot_init, dict(_base.fixed, demon=True), _base.maximize))
del _base

OPTIMIZER_NAMES = tuple(REGISTRY)


def get_spec(name: str) -> OptimizerSpec:
    if name not in REGISTRY:
        raise choice_error("optimizer", name, REGISTRY)
    return REGISTRY[name]


def _rule(spec: OptimizerSpec, key: str) -> str:
    """The rule for `key` ("eps[0]" for one of a pair): the optimizer's own, else the shared one."""
    base = key.split("[")[0]
    return spec.rules.get(key) or spec.rules.get(base) or _PARAM_RULES[base]


def check_for_surfaces(name: str) -> None:
    """Refuse, in words, an optimizer that needs weight matrices where theta is one 2-D point."""
    if get_spec(name).rest:
        raise TuilabError(f"{name} orthogonalises weight matrices, and a surface's point is two numbers, not a "
                          f"matrix: race {name} on a network preset (e.g. muon-vs-adamw)")


def _check_number(opt: str, key: str, value, rule: str):
    test, words = _RULES[rule]
    if rule.endswith("_or_none") and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return "none"  # a word, not None, so that records written as TOML read back
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TuilabError(f"{opt}: {key} must be {words}, got {value!r}")
    if not math.isfinite(float(value)) or not test(float(value)):
        raise TuilabError(f"{opt}: {key} must be {words}, got {value!r}")
    return int(value) if rule in _WHOLE else float(value)


def resolve_hyperparameters(name: str, hyper: dict | None = None) -> dict:
    """The full, validated hyperparameters of `name` with `hyper` over the defaults."""
    spec = get_spec(name)
    hyper = dict(hyper or {})
    allowed = set(spec.defaults)
    if spec.momentum_param:
        allowed |= {"demon", "demon_steps"}
    if spec.maximize:
        allowed.add("maximize")  # off unless given: configs that never name it stay as they were
    for key in hyper:
        if key in spec.fixed and hyper[key] == spec.fixed[key]:
            continue
        if key in spec.fixed:
            raise TuilabError(f"{name}: {key} is fixed to {spec.fixed[key]!r} for this optimizer")
        if key not in allowed:
            raise choice_error(f"hyperparameter for {name}:", key, allowed)
    out = {**spec.defaults, **spec.fixed, **hyper}
    for key, value in list(out.items()):
        if key in _BOOLS:
            if not isinstance(value, (bool, np.bool_)):
                raise TuilabError(f"{name}: {key} must be true or false, got {value!r}")
            out[key] = bool(value)
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                raise choice_error(f"{name}: {key}", value, _CHOICES[key])
        elif key == "rest" and spec.rest:
            out[key] = _resolve_rest(name, value)
        elif spec.width(key) > 1:
            width = spec.width(key)
            if not isinstance(value, (tuple, list)) or len(value) != width:
                what = "a pair of numbers" if width == 2 else f"{width} numbers"
                raise TuilabError(f"{name}: {key} must be {what}, got {value!r}")
            out[key] = tuple(_check_number(name, f"{key}[{k}]", v, _rule(spec, f"{key}[{k}]"))
                             for k, v in enumerate(value))
        elif key == "demon_steps":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise TuilabError(f"{name}: demon_steps must be a whole number >= 0, got {value!r}")
        else:
            out[key] = _check_number(name, key, value, _rule(spec, key))
    if "etas" in out and not out["etas"][0] < 1 < out["etas"][1]:
        raise TuilabError(f"{name}: etas must be (etaminus, etaplus) with 0 < etaminus < 1 < etaplus, "
                          f"got {list(out['etas'])}")
    if "step_sizes" in out and not out["step_sizes"][0] <= out["step_sizes"][1]:
        raise TuilabError(f"{name}: step_sizes must be (min, max) with min <= max, got {list(out['step_sizes'])}")
    if "dampening" in out and out.get("nesterov") and (out["momentum"] <= 0 or out["dampening"] != 0):
        raise TuilabError(f"{name}: nesterov needs momentum > 0 and dampening = 0")
    return out


def _resolve_rest(name: str, value) -> dict:
    """The optimizer that takes the vectors (biases) of an optimizer for matrices: {name, its hyperparameters}."""
    if not isinstance(value, dict):
        raise TuilabError(f"{name}: rest must be a table naming the optimizer for the biases, "
                          f"e.g. rest = {{name = \"adamw\", lr = 3e-4}}, got {value!r}")
    value = dict(value)
    rest = value.pop("name", "adamw")
    spec = get_spec(rest)
    if spec.whole_tensors or spec.closure is not None:
        raise TuilabError(f"{name}: rest = {rest!r} works per tensor or re-evaluates the loss; the biases need an "
                          "optimizer that steps value by value on one gradient (adamw, adam, sgd, ...)")
    for key in ("demon", "maximize"):
        if value.get(key):
            raise TuilabError(f"{name}: rest cannot take {key}; {name} has no {key} of its own")
    try:
        return {"name": rest, **resolve_hyperparameters(rest, value)}
    except TuilabError as exc:
        raise TuilabError(f"{name}: rest: {exc}") from None


def _hp_vector(spec: OptimizerSpec, hyper: dict) -> np.ndarray:
    flat = []
    for key in spec.hp_order:
        value = hyper.get(key, False)
        if key in _CHOICES:
            value = _CHOICES[key].index(value)
        for v in (value if spec.width(key) > 1 else [value]):
            flat.append(_NONE_STANDS_IN if v == "none" else float(v))
    return np.array(flat, dtype=np.float64)


class Optimizer:
    """Registry entry + hyperparameters + explicit state for one flat parameter vector.

    `step(theta, grad)` applies one update in place; `state` (slots x n) and `scal`
    are plain arrays that a chunk kernel can take directly.
    """

    def __init__(self, name: str, n_params: int, dtype=np.float32, total_steps: int | None = None,
                 layout=None, **hyper):
        """`layout` (engine.model.Layout) tells optimizers that work per tensor where theta's matrices
        are; without it theta is one vector (a surface's point)."""
        self.spec = get_spec(name)
        self.name = name
        self.hyper = resolve_hyperparameters(name, hyper)
        self.lr = self.hyper["lr"]
        self.dtype = np.dtype(dtype)
        self.hp = _hp_vector(self.spec, self.hyper)
        table = None
        if self.spec.whole_tensors:
            table = layout.tensor_table() if layout is not None else np.array([[0, n_params, 0]], np.int64)
        self.rest = None
        if self.spec.rest and layout is None:
            raise TuilabError(f"{name} steps weight matrices: it needs the network's layout "
                              "(Optimizer(..., layout=net.layout)) to find them")
        if self.spec.rest:  # hp gets the rest's id, lr ratio and hp (kernels.optimizers.MUON_REST)
            rest_hyper = dict(self.hyper["rest"])
            n_vec = int(sum(rows for _, rows, cols in table if cols == 0))
            self.rest = Optimizer(rest_hyper.pop("name"), n_vec, dtype, **rest_hyper)
            self.hp = np.concatenate([self.hp, [self.rest.opt_id, self.rest.lr / self.lr, len(self.rest.hp)],
                                      self.rest.hp])
        if table is not None:
            self.hp = np.concatenate([self.hp, [len(table)], table.ravel().astype(np.float64)])
        self.slots = self.spec.slots + (tuple(f"rest.{s}" for s in self.rest.spec.slots) if self.rest else ())
        self.state = np.zeros((len(self.slots), n_params), dtype=self.dtype)
        for slot, key in self.spec.slot_init.items():
            self.state[self.spec.slots.index(slot)] = self.hyper[key]
        self.scal = np.zeros(K.N_SCALARS, dtype=np.float64)
        self.scal[K.S_B1POW] = self.scal[K.S_B2POW] = self.scal[K.S_MU_PRODUCT] = 1.0
        self.scal[K.S_ETA], self.scal[K.S_MU] = self.lr, 1.0
        if self.hyper.get("maximize"):
            self.scal[K.S_MAXIMIZE] = 1.0
        self.closure = None
        if self.spec.closure is not None:
            h = {k: (None if v == "none" else v) for k, v in self.hyper.items()}
            self.closure = self.spec.closure(**h)
        if self.hyper.get("demon"):
            steps = self.hyper.get("demon_steps") or total_steps
            if not steps:
                raise TuilabError(
                    f"{name}: Demon needs demon_steps, the total number of steps it decays over")
            self.scal[K.S_DEMON_T] = float(steps)
            self.scal[K.S_DEMON_IDX] = _flat_names(self.spec).index(
                self.spec.momentum_param)
        if self.rest is not None:  # the rest's state and scalars where kernels.optimizers.rest_step looks
            k, n_vec = self.rest.state.shape
            self.state[1:].reshape(-1)[:k * n_vec] = self.rest.state.reshape(-1)
            self.scal[K.S_REST] = K.MUON_REST
            self.scal = np.concatenate([self.scal, self.rest.scal])

    @property
    def opt_id(self) -> int:
        return self.spec.opt_id

    @property
    def shadow(self) -> int:
        """The state row of the optimizer's second point (ASGD's average), or -1."""
        return self.slots.index(self.spec.shadow) if self.spec.shadow else -1

    @property
    def steps_taken(self) -> int:
        return int(self.scal[K.S_STEP])

    def _check(self, theta: np.ndarray, grad: np.ndarray) -> None:
        n = self.state.shape[1]
        for label, arr in (("theta", theta), ("grad", grad)):
            if arr.shape != (n,) or arr.dtype != self.dtype:
                raise TuilabError(f"{label} must be a {self.dtype.name} vector of {n} values, "
                                  f"got {arr.dtype.name} {arr.shape}")
            if not arr.flags.c_contiguous:
                raise TuilabError(f"{label} must be a contiguous array (use np.ascontiguousarray)")

    def extra_state(self) -> tuple[dict, dict]:
        """State beyond `state` and `scal` (L-BFGS's history): arrays and plain numbers, for checkpoints."""
        if self.closure is None:
            return {}, {}
        return state_to_arrays(self.closure.state, self.state.shape[1], self.dtype)

    def load_extra_state(self, arrays: dict, numbers: dict) -> None:
        if self.closure is not None:
            self.closure.state = state_from_arrays(arrays, numbers, self.dtype)

    def step_closure(self, theta: np.ndarray, closure, lr: float | None = None) -> float:
        """One step of an optimizer that re-evaluates the loss (L-BFGS): closure(theta) -> (loss, gradient)
        as often as it needs; theta moves in place; returns the loss where the step began."""
        if self.closure is None:
            raise TuilabError(f"{self.name} takes one gradient a step: use step(theta, grad)")
        self.scal[K.S_STEP] += 1
        return self.closure.step(theta, closure, self.lr if lr is None else float(lr))

    def step(self, theta: np.ndarray, grad: np.ndarray, lr: float | None = None) -> None:
        """One update of theta in place with gradient grad."""
        if self.closure is not None:
            raise TuilabError(f"{self.name} re-evaluates the loss within a step: use step_closure(theta, closure)")
        self._check(theta, grad)
        if self.hyper.get("maximize"):
            grad = grad.copy()  # the kernel negates it in place; the caller's array stays theirs
        K.optimizer_step(self.opt_id, theta, grad, self.state, self.scal, self.hp,
                         self.lr if lr is None else float(lr))
