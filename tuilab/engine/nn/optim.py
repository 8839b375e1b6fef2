"""The optimizer registry (name -> kernel, torch-named defaults, what internals shows of it) and a small handle.

Names and defaults follow torch.optim where PyTorch has the optimizer; qhm/qhadam
follow Ma & Yarats (2019), lion Chen et al. (2023).  Demon (Chen et al. 2019) is a
switch on every optimizer with a momentum or first-moment term (`demon = true`,
`demon_steps = T`), and `demon_<name>` is registered for each of them.
An entry's hp order and state slots are its kernel's named places (kernels.optimizers.LAYOUT_OF); its
hyperparameters are checked by engine.nn.hyperparameters, its internals' formulas live in engine.nn.inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from tuilab.engine.nn import hyperparameters as H
from tuilab.engine.nn import inside as I
from tuilab.engine.nn.lbfgs import LBFGS, state_from_arrays, state_to_arrays
from tuilab.errors import TuilabError, choice_error
from tuilab.kernels import optimizers as K


@dataclass(frozen=True)
class OptimizerSpec:
    """One registered optimizer: its step kernel (whose named places give its hp order and state slots),
    defaults, and what internals shows of it."""

    name: str
    step: object  # a kernel in kernels.optimizers.STEP_KERNELS
    defaults: dict
    summary: str
    inside: I.Inside = I.NOTHING  # its effective step and scalars (engine.nn.inside)
    momentum_param: str | None = None  # what Demon decays: a name in hp_order ("betas[0]": the pair's first)
    slot_init: dict = field(default_factory=dict)  # slot -> hyperparameter giving its start value
    fixed: dict = field(default_factory=dict)  # hp not settable under this name (e.g. adamw)
    maximize: bool = False  # takes torch's `maximize` (ascend): the optimizers torch.optim has
    rules: dict = field(default_factory=dict)  # hp -> a rule in hyperparameters._RULES where it differs
    shadow: str | None = None  # a slot holding a second point worth showing (ASGD's running average)
    rest: bool = False  # steps theta's matrices only, and hands the vectors to a `rest` optimizer (Muon)
    closure: object = None  # re-evaluates the loss within a step (L-BFGS): a class with step(theta, closure, lr)

    @property
    def hp_places(self):
        """The kernel's named places in hp (kernels.optimizers.positions), or None for a closure optimizer."""
        return None if self.closure is not None else K.LAYOUT_OF[self.step][0]

    @cached_property  # read for every Optimizer made: an atlas makes one a cell
    def hp_order(self) -> tuple[str, ...]:
        """The hyperparameters in the kernel's hp vector, in its order ("betas" stands for its two numbers)."""
        return () if self.hp_places is None else tuple(name for name, _ in type(self.hp_places).grouped)

    @cached_property
    def _widths(self) -> dict:
        return {} if self.hp_places is None else dict(type(self.hp_places).grouped)

    @property
    def slots(self) -> tuple[str, ...]:
        """The names of the kernel's state rows, in order."""
        return () if self.closure is not None else K.LAYOUT_OF[self.step][1]._fields

    def width(self, key: str) -> int:
        """How many numbers hyperparameter `key` is: 2 for a pair, 1 for a plain number."""
        return self._widths.get(key, 1)

    @property
    def momentum_place(self) -> int:
        """Where in hp the coefficient Demon decays sits ("betas[0]" -> betas_0)."""
        return getattr(self.hp_places, self.momentum_param.replace("[", "_").rstrip("]"))

    @property
    def whole_tensors(self) -> bool:
        """Works tensor by tensor (theta's tensor table ends its hp), so it must see whole matrices."""
        return self.closure is None and self.step in K.WHOLE_TENSOR_STEPS

    @property
    def opt_id(self) -> int:
        """The step kernel's row in the optimizer table: what the kernels dispatch on (-1: a closure optimizer)."""
        return -1 if self.closure is not None else K.opt_id_of(self.step)


REGISTRY: dict[str, OptimizerSpec] = {}
# the optimizers torch.optim has, which take its `maximize`
TORCH_NAMED = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "adamw",
               "nadam", "radam", "adamax", "rprop", "asgd", "adafactor"}


def _register(spec: OptimizerSpec) -> None:
    if spec.name in TORCH_NAMED and not spec.maximize:
        spec = replace(spec, maximize=True)
    # a registry entry that cannot be checked or handed to a kernel fails here, at import,
    # in words, rather than as a KeyError on the first run that sets the hyperparameter
    if spec.closure is None and (spec.step not in K.STEP_KERNELS or spec.step not in K.LAYOUT_OF):
        raise TuilabError(f"optimizer {spec.name}: its step kernel is not a row of "
                          "kernels.optimizers.STEP_KERNELS and LAYOUT_OF; add it there")
    for key in (*spec.defaults, *spec.fixed):
        if not H.has_rule(key):
            raise TuilabError(f"optimizer {spec.name}: hyperparameter {key!r} has no rule; add it to _PARAM_RULES "
                              "(a number), _BOOLS (a switch) or _CHOICES (a word) in engine/nn/hyperparameters.py")
    for key in spec.hp_order:
        if key not in spec.defaults and key not in spec.fixed:
            raise TuilabError(f"optimizer {spec.name}: its kernel's hp names {key!r}, which has no default")
        value, width = {**spec.defaults, **spec.fixed}[key], spec.width(key)
        if width > 1 and not (isinstance(value, tuple) and len(value) == width):
            raise TuilabError(f"optimizer {spec.name}: {key} is {width} numbers in its kernel's hp; "
                              f"its default {value!r} is not")
    REGISTRY[spec.name] = spec


_ADAM_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)

_register(OptimizerSpec("sgd", K.sgd_step,
                        dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
                        "stochastic gradient descent (torch.optim.SGD)", I.SGD, momentum_param="momentum"))
_register(OptimizerSpec("momentum", K.sgd_step,
                        dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
                        "SGD with heavy-ball momentum 0.9", I.SGD, momentum_param="momentum"))
_register(OptimizerSpec("nesterov", K.sgd_step,
                        dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
                        "SGD with Nesterov momentum 0.9", I.SGD, momentum_param="momentum"))
_register(OptimizerSpec("adagrad", K.adagrad_step,
                        dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10),
                        "Adagrad (torch.optim.Adagrad)", I.ADAGRAD, slot_init={"sum": "initial_accumulator_value"}))
_register(OptimizerSpec("rmsprop", K.rmsprop_step,
                        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
                        "RMSProp (torch.optim.RMSprop)", I.RMSPROP, momentum_param="momentum"))
_register(OptimizerSpec("adadelta", K.adadelta_step, dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0),
                        "Adadelta (torch.optim.Adadelta)", I.ADADELTA))
_register(OptimizerSpec("adam", K.adam_step, dict(_ADAM_DEFAULTS, decoupled_weight_decay=False),
                        "Adam (torch.optim.Adam)", I.ADAM, momentum_param="betas[0]"))
_register(OptimizerSpec("amsgrad", K.adam_step, dict(_ADAM_DEFAULTS, decoupled_weight_decay=False),
                        "Adam with amsgrad", I.ADAM, momentum_param="betas[0]", fixed={"amsgrad": True}))
_register(OptimizerSpec("adamw", K.adam_step, dict(_ADAM_DEFAULTS, weight_decay=1e-2),
                        "Adam with decoupled weight decay (torch.optim.AdamW)", I.ADAM,
                        momentum_param="betas[0]", fixed={"decoupled_weight_decay": True}))
_register(OptimizerSpec("nadam", K.nadam_step,
                        dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                             decoupled_weight_decay=False),
                        "NAdam (torch.optim.NAdam)", I.NADAM, momentum_param="betas[0]"))
_register(OptimizerSpec("radam", K.radam_step,
                        dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False),
                        "RAdam (torch.optim.RAdam)", I.RADAM, momentum_param="betas[0]"))
_register(OptimizerSpec("adamax", K.adamax_step, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
                        "Adamax (torch.optim.Adamax)", I.ADAMAX, momentum_param="betas[0]"))
_register(OptimizerSpec("qhm", K.qhm_step,
                        dict(lr=1e-2, momentum=0.999, nu=0.7, weight_decay=0.0, decoupled_weight_decay=False),
                        "quasi-hyperbolic momentum (Ma & Yarats 2019)", I.QHM, momentum_param="momentum"))
_register(OptimizerSpec("qhadam", K.qhadam_step,
                        dict(lr=1e-3, betas=(0.995, 0.999), nus=(0.7, 1.0), eps=1e-8, weight_decay=0.0,
                             decoupled_weight_decay=False),
                        "quasi-hyperbolic Adam (Ma & Yarats 2019)", I.QHADAM, momentum_param="betas[0]"))
_register(OptimizerSpec("qhadamw", K.qhadam_step,
                        dict(lr=1e-3, betas=(0.995, 0.999), nus=(0.7, 1.0), eps=1e-8, weight_decay=1e-2),
                        "QHAdam with decoupled weight decay", I.QHADAM, momentum_param="betas[0]",
                        fixed={"decoupled_weight_decay": True}))
_register(OptimizerSpec("lion", K.lion_step, dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
                        "Lion, sign momentum (Chen et al. 2023)", I.LION, momentum_param="betas[0]"))
_register(OptimizerSpec("rprop", K.rprop_step, dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)),
                        "resilient backpropagation, for full batches (torch.optim.Rprop)", I.RPROP,
                        slot_init={"step_size": "lr"}))
_register(OptimizerSpec("asgd", K.asgd_step, dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0),
                        "averaged SGD: the iterate and its running average (torch.optim.ASGD)", I.ASGD,
                        rules={"alpha": "nonneg"}, shadow="ax"))
_register(OptimizerSpec("adafactor", K.adafactor_step,
                        dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0),
                        "Adafactor: second moments of matrices as row and column means (torch.optim.Adafactor)",
                        rules={"eps[0]": "nonneg_or_none", "eps[1]": "nonneg"}))
_register(OptimizerSpec("muon", K.muon_step,
                        dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                             ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5,
                             adjust_lr_fn="original", rest={"name": "adamw"}),
                        "Muon: each weight matrix's momentum orthogonalised by Newton-Schulz; biases to `rest` "
                        "(torch.optim.Muon beside AdamW)", rest=True))
_register(OptimizerSpec("lbfgs", None,
                        dict(lr=1.0, max_iter=20, max_eval="none", tolerance_grad=1e-7, tolerance_change=1e-9,
                             history_size=100, line_search_fn="none"),
                        "L-BFGS: quasi-Newton from the last history_size steps, re-evaluating the loss within a "
                        "step; full batches (torch.optim.LBFGS)", closure=LBFGS))


def _momentum_default(spec: OptimizerSpec) -> float:
    key = spec.momentum_param or ""
    return spec.defaults["betas"][0] if key == "betas[0]" else spec.defaults.get(key, 0.0)


# Demon variants of every optimizer whose momentum is on by default (not plain sgd/rmsprop).
for _base in [s for s in REGISTRY.values() if _momentum_default(s) > 0]:
    _register(replace(_base, name=f"demon_{_base.name}", defaults=dict(_base.defaults, demon_steps=0),
                      summary=f"{_base.summary} with Demon decaying momentum (Chen et al. 2019)",
                      fixed=dict(_base.fixed, demon=True)))
del _base

OPTIMIZER_NAMES = tuple(REGISTRY)


def get_spec(name: str) -> OptimizerSpec:
    if name not in REGISTRY:
        raise choice_error("optimizer", name, REGISTRY)
    return REGISTRY[name]


def resolve_hyperparameters(name: str, hyper: dict | None = None) -> dict:
    """The full, validated hyperparameters of `name` with `hyper` over the defaults."""
    return H.resolve(get_spec(name), hyper, get_spec)


def check_for_surfaces(name: str) -> None:
    """Refuse, in words, an optimizer that needs weight matrices where theta is one 2-D point."""
    if get_spec(name).rest:
        raise TuilabError(f"{name} orthogonalises weight matrices, and a surface's point is two numbers, not a "
                          f"matrix: race {name} on a network preset (e.g. muon-vs-adamw)")


def _hp_vector(spec: OptimizerSpec, hyper: dict) -> np.ndarray:
    flat = []
    for key in spec.hp_order:
        value = hyper.get(key, False)
        if key in H.CHOICES:
            value = H.CHOICES[key].index(value)
        for v in (value if spec.width(key) > 1 else [value]):
            flat.append(H.NONE_STANDS_IN if v == "none" else float(v))
    return np.array(flat, dtype=np.float64)


class Optimizer:
    """Registry entry + hyperparameters + explicit state for one flat parameter vector.

    `step(theta, grad)` applies one update in place; `state` (slots x n) and `scal`
    are plain arrays that a chunk kernel can take directly.
    """

    def __init__(self, name: str, n_params: int, dtype=np.float32, total_steps: int | None = None,
                 layout=None, *, checked: dict | None = None, **hyper):
        """`layout` (engine.nn.model.Layout) tells optimizers that work per tensor where theta's matrices
        are; without it theta is one vector (a surface's point). `checked`: every hyperparameter, as
        resolve_hyperparameters gave them to the preset reader (a run's OptimizerTable.hyper), taken as they
        are rather than checked a second time; else `hyper` over the defaults, checked here."""
        self.spec = get_spec(name)
        self.name = name
        self.hyper = dict(checked) if checked is not None else resolve_hyperparameters(name, hyper)
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
            self.scal[K.S_DEMON_IDX] = self.spec.momentum_place
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
